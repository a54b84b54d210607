/**
 * The Stashcat test server's answers against the field types the public clients decode them with, written
 * down by hand from reading their sources (see /work/shared/reference/stashcat-api.md):
 *
 * - gostashcat (Go) fails a whole answer on a field of the wrong type, and is used against the real
 *   service: its structs are the strictest contract. `int,string` fields must be quoted digits (or null),
 *   `int` fields numbers, `bool` fields booleans, `string` fields strings (null leaves them empty).
 * - stashcat-api-client (C#) has models generated from real answers: a `long` there was a number, a `bool`
 *   a boolean.
 * - stashcat-api (TypeScript) declares types, some of them guessed; used where nothing contradicts it.
 *
 * Where they disagree the server has a switch (deletedAs: gostashcat's quoted time by default, stashcat-api's
 * boolean on request), and the bridge reads both. The bridge's own client reads these same answers in the
 * other test files, so it is tested against these shapes too.
 */
import { io, type Socket } from "socket.io-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encryptBytes, encryptText, newKey, wrapChatKey } from "../../../bridges/stashcat/crypto.js";
import {
  StashcatServer,
  stashcatSeed,
  type SeedUser,
} from "../../harness/servers/stashcat/StashcatServer.js";
import { eventually } from "../../helpers/fixtures.js";
import { StashcatTestUser, postMultipart, payloadOf, type Json } from "../../helpers/stashcat.js";

const seed = stashcatSeed();
const seedUser = (id: number): SeedUser => {
  const user = seed.users.find((u) => u.id === id);
  if (user === undefined) throw new Error(`no seed user ${String(id)}`);
  return user;
};
const BRIDGE = 4700;
const MEYER = 4711;
const SCHULZ = 4712;

/** What is wrong with a value for one field type, or undefined when it decodes. */
type Decoder = (value: unknown) => string | undefined;
/** Field name → decoder; a name ending in "?" may be absent. */
type Shape = Record<string, Decoder>;

const describeValue = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : `${typeof value} ${JSON.stringify(value)}`;

/** Go `string`: a string, or null (left empty). */
const goString: Decoder = (v) => (v === null || typeof v === "string" ? undefined : "a string");
/** Go `int` (C# `long`): a whole number, or null. */
const goInt: Decoder = (v) => (v === null || Number.isInteger(v) ? undefined : "a number");
/** Go `bool` (C# `bool`): a boolean, or null. */
const goBool: Decoder = (v) => (v === null || typeof v === "boolean" ? undefined : "a boolean");
/** Go `int` with `,string`: quoted digits, or null. */
const goQuotedInt: Decoder = (v) =>
  v === null || (typeof v === "string" && /^-?\d+$/.test(v)) ? undefined : "quoted digits";
/** gostashcat's FlexInt: a number or quoted digits. */
const flexInt: Decoder = (v) =>
  Number.isInteger(v) || (typeof v === "string" && /^-?\d+$/.test(v))
    ? undefined
    : "a number or quoted digits";
/** A value the sources disagree on, any of these. */
const either =
  (...decoders: Decoder[]): Decoder =>
  (v) =>
    decoders.some((d) => d(v) === undefined) ? undefined : decoders.map((d) => d(v)).join(" or ");
const isNull: Decoder = (v) => (v === null ? undefined : "null");
const list =
  (item: Decoder): Decoder =>
  (v) => {
    if (v === null) return undefined;
    if (!Array.isArray(v)) return "a list";
    for (const [i, entry] of (v as unknown[]).entries()) {
      const wrong = item(entry);
      if (wrong !== undefined) return `item ${String(i)}: ${wrong}`;
    }
    return undefined;
  };
const anything: Decoder = () => undefined;
/** An object of this shape (or null, which Go decodes as the zero value). */
const object =
  (shape: Shape): Decoder =>
  (v) => {
    if (v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) return "an object";
    const problems = mismatches(v as Json, shape);
    return problems.length === 0 ? undefined : `{ ${problems.join("; ")} }`;
  };

function mismatches(value: Json, shape: Shape): string[] {
  const problems: string[] = [];
  for (const [field, decode] of Object.entries(shape)) {
    const optional = field.endsWith("?");
    const name = optional ? field.slice(0, -1) : field;
    if (!(name in value)) {
      if (!optional) problems.push(`${name} is missing`);
      continue;
    }
    const wrong = decode(value[name]);
    if (wrong !== undefined) problems.push(`${name} should be ${wrong}, is ${describeValue(value[name])}`);
  }
  return problems;
}

function expectShape(value: unknown, shape: Shape): void {
  expect(
    typeof value === "object" && value !== null ? mismatches(value as Json, shape) : ["not an object"],
  ).toEqual([]);
}

// gostashcat users.go User (id as a string), stashcat-api-client's Sender and Callable.
const user: Shape = {
  id: goString,
  first_name: goString,
  last_name: goString,
  "image?": goString,
  "active?": goString,
  "deleted?": goString,
  "allows_voip_calls?": goBool,
  "online?": goBool,
  "public_key?": goString,
  "language?": goString,
};
// gostashcat role.go.
const role: Shape = { id: goString, name: goString, global: goString, company_id: goString, time: goString };
const userinfo: Shape = { ...user, socket_id: goString, roles: list(object(role)) };
// gostashcat channels.go ChannelInfoRadikal and MembershipInfo; the id is `int,string` in lists, `int` alone.
const membership: Shape = {
  is_member: goBool,
  joined: goString,
  confirmation: goString,
  may_manage: goBool,
  write: goBool,
};
const channel: Shape = {
  name: goString,
  description: goString,
  company: goString,
  type: goString,
  visible: goBool,
  encrypted: goBool,
  last_action: goString,
  last_activity: flexInt,
  writable: goString,
  inviteable: goString,
  can_leave: goBool,
  show_membership_activities: goBool,
  user_count: goInt,
  pending_count: goInt,
  num_members_without_keys: goInt,
  membership: object(membership),
  key: goString,
  unread: goInt,
};
// gostashcat message.go Conversation; stashcat-api-client's generated Conversation; stashcat-api's
// unique_identifier.
const conversation: Shape = {
  id: goString,
  name: goString,
  created: goString,
  last_action: goString,
  last_activity: goString,
  encrypted: goBool,
  members: list(object(user)),
  user_count: goInt,
  unread_messages: goInt,
  key: goString,
  favorite: goBool,
  num_members_without_keys: goInt,
  "unique_identifier?": goString,
};
// gostashcat file.go File and Key; stashcat-api's FileInfo where gostashcat has nothing.
const fileKey: Shape = {
  file_id: goInt,
  type: goString,
  chat_id: goQuotedInt,
  key: goString,
  iv: goString,
  chat_key: goString,
};
const file: Shape = {
  id: goQuotedInt,
  name: goString,
  size: goString,
  size_byte: goQuotedInt,
  size_string: goString,
  type_id: goQuotedInt,
  folder_type: goString,
  ext: goString,
  mime: goString,
  uploaded: goQuotedInt,
  modified: goQuotedInt,
  owner_id: goQuotedInt,
  last_download: goQuotedInt,
  times_downloaded: goQuotedInt,
  encrypted: goBool,
  e2e_iv: goString,
  md5: goString,
  dimensions: object({ width: goInt, height: goInt }),
  keys: list(object(fileKey)),
};
// gostashcat message.go Message and ReplyTo; stashcat-api-client's MessagePayload (generated); stashcat-api's
// MessageSyncPayload where the others have nothing. `deleted`: gostashcat's `int,string`.
const replyTo: Decoder = either(
  goInt,
  object({ message_id: goInt, message_hash: goString, message_verification: goString }),
);
const message = (deleted: Decoder): Shape => ({
  id: goInt,
  text: goString,
  conversation_id: goInt,
  channel_id: goInt,
  thread_id: goInt,
  hash: goString,
  verification: goString,
  sender: object(user),
  device_id: goString,
  iv: goString,
  alarm: goBool,
  confirmation_required: goBool,
  kind: goString,
  type: goString,
  encrypted: goBool,
  time: flexInt,
  // A string in stashcat-api-client's sample, a number in stashcat-api's types.
  micro_time: either(goString, goInt),
  deleted,
  is_deleted_by_manager: goBool,
  is_forwarded: goBool,
  reply_to: replyTo,
  location: either(
    isNull,
    object({ latitude: anything, longitude: anything, encrypted: goBool, iv: goString }),
  ),
  likes: goInt,
  liked: goBool,
  flagged: goBool,
  unread: goBool,
  seen_by_others: goBool,
  has_file_attached: goBool,
  reciever: list(object(user)),
  files: list(object(file)),
  tags: list(anything),
  links: list(anything),
  reactions: list(anything),
});
// gostashcat gostashcat.go Keys; stashcat-api-client's generated Keys (version a number, deleted null);
// stashcat-api's type and format.
const keys: Shape = {
  user_id: goString,
  private_key: goString,
  public_key: goString,
  time: goString,
  version: goInt,
  deleted: isNull,
  type: goString,
  format: goString,
};

describe("Stashcat test server - the field types of the public clients", () => {
  let server: StashcatServer;
  let booleanServer: StashcatServer;
  let meyer: StashcatTestUser;
  let schulz: StashcatTestUser;
  let bridge: StashcatTestUser;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    server = await StashcatServer.start({ seed });
    booleanServer = await StashcatServer.start({ seed, deletedAs: "boolean" });
    meyer = await StashcatTestUser.login(server, seedUser(MEYER));
    schulz = await StashcatTestUser.login(server, seedUser(SCHULZ));
    bridge = await StashcatTestUser.login(server, seedUser(BRIDGE));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.disconnect();
    await server.stop();
    await booleanServer.stop();
  });

  it("Stashcat contract - the login, the account, users and the private key", async () => {
    expectShape(meyer.userinfo, userinfo);
    expectShape((await meyer.call("users/me", { withkey: "false" }))["user"], userinfo);
    expectShape((await meyer.call("users/info", { user_id: String(SCHULZ), withkey: "true" }))["user"], user);
    expectShape(await meyer.call("auth/check"), { success: goBool });
    expectShape((await meyer.call("security/get_private_key"))["keys"], keys);
    expectShape(
      (await schulz.call("security/get_private_key", { format: "jwk", type: "encryption" }))["keys"],
      keys,
    );
    const companies = (await meyer.call("company/member", { no_cache: "true" }))["companies"];
    expectShape({ companies }, { companies: list(object({ id: goString, name: goString })) });
  });

  it("Stashcat contract - channels, listed and alone, and conversations, listed, alone and created", async () => {
    const listed = (await meyer.call("channels/subscripted", { company: "1" }))["channels"];
    expectShape({ listed }, { listed: list(object({ ...channel, id: goQuotedInt })) });
    const alone = (await meyer.call("channels/info", { channel_id: "1001", without_members: "true" }))[
      "channels"
    ];
    expectShape(alone, { ...channel, id: goInt });

    const conversations = (await meyer.call("message/conversations", { limit: "30", offset: "0" }))[
      "conversations"
    ];
    expectShape({ conversations }, { conversations: list(object(conversation)) });
    expectShape(
      (await meyer.call("message/conversation", { conversation_id: "2001" }))["conversation"],
      conversation,
    );
    const chatKey = newKey();
    const members = JSON.stringify([
      { id: BRIDGE, key: wrapChatKey(chatKey, seedUser(BRIDGE).publicKey) },
      { id: SCHULZ, key: wrapChatKey(chatKey, seedUser(SCHULZ).publicKey) },
    ]);
    expectShape(
      (await bridge.call("message/createEncryptedConversation", { members }))["conversation"],
      conversation,
    );
    const byIds = await meyer.call("message/createEncryptedConversation", {
      members: JSON.stringify([String(BRIDGE)]),
      unique_identifier: "0a".repeat(16),
    });
    expectShape(byIds["conversation"], conversation);
  });

  it("Stashcat contract - messages as listed, sent and pushed, with a reply, a file, a place, a like and a deletion", async () => {
    const socket = await schulz.connectPush();
    sockets.push(socket);
    const pushed: Json[] = [];
    const notified: Json[] = [];
    socket.on("message_sync", (payload: Json) => pushed.push(payload));
    socket.on("notification", (payload: Json) => notified.push(payload));

    const key = await meyer.chatKey("channel", 1001);
    const first = await meyer.send("channel", 1001, "Lage");
    // A file, sealed with the file-key scheme.
    const fileKeyBytes = newKey();
    const body = encryptBytes(Buffer.from("Einsatzplan"), fileKeyBytes);
    const upload = await postMultipart(
      server.apiUrl,
      "file/upload",
      {
        ...meyer.auth(),
        resumableChunkNumber: "1",
        resumableChunkSize: String(5 * 1024 * 1024),
        resumableCurrentChunkSize: String(body.data.length),
        resumableTotalSize: String(body.data.length),
        resumableType: "text/plain",
        resumableIdentifier: "contract-file",
        resumableFilename: "plan.txt",
        resumableRelativePath: "plan.txt",
        resumableTotalChunks: "1",
        folder: "0",
        type: "channel",
        type_id: "1001",
        encrypted: "true",
        iv: body.iv.toString("hex"),
      },
      { field: "file", bytes: body.data },
    );
    const uploaded = payloadOf(upload, "file/upload")["file"] as Json;
    const sealedKey = encryptBytes(fileKeyBytes, key);
    await meyer.call("security/set_file_access_key", {
      file_id: uploaded["id"] as string,
      target: "channel",
      target_id: "1001",
      key: sealedKey.data.toString("hex"),
      iv: sealedKey.iv.toString("hex"),
    });
    expectShape((await schulz.call("file/info", { file_id: uploaded["id"] as string }))["file"], file);

    const text = encryptText("Antwort mit Ort und Datei", key);
    const sent = (
      await meyer.call("message/send", {
        target: "channel",
        channel_id: "1001",
        text: text.text,
        iv: text.iv,
        encrypted: "true",
        verification: "",
        files: JSON.stringify([uploaded["id"]]),
        url: "[]",
        type: "text",
        is_forwarded: "false",
        reply_to: String(first["id"]),
        latitude: encryptText("52.37", key).text,
        longitude: encryptText("9.73", key).text,
      })
    )["message"] as Json;
    expectShape(sent, message(goQuotedInt));
    await schulz.call("message/like", { message_id: String(first["id"]) });
    await meyer.call("message/delete", { message_id: String(first["id"]) });

    const listed = await schulz.content("channel", 1001, { limit: "100" });
    const chatMessages = listed.filter((m) => m["kind"] === "message");
    expect(chatMessages.length).toBeGreaterThanOrEqual(2);
    expectShape({ listed: chatMessages }, { listed: list(object(message(goQuotedInt))) });
    // The deleted one says when, quoted; the live one null.
    expect(chatMessages.find((m) => m["id"] === first["id"])?.["deleted"]).toMatch(/^\d+$/);
    expect(chatMessages.find((m) => m["id"] === sent["id"])?.["deleted"]).toBeNull();

    await eventually(
      () => (pushed.some((m) => m["id"] === first["id"] && m["deleted"] !== null) ? true : undefined),
      5000,
      "the deletion pushed",
    );
    expectShape({ pushed }, { pushed: list(object(message(goQuotedInt))) });
    await eventually(() => (notified.length > 0 ? true : undefined), 5000, "a notification");
    expectShape(
      { notified },
      {
        notified: list(
          object({ message: object(message(goQuotedInt)), channel: object({ ...channel, id: goQuotedInt }) }),
        ),
      },
    );
  });

  it("Stashcat contract - with deletedAs boolean, deleted is stashcat-api's boolean instead", async () => {
    const officer = await StashcatTestUser.login(booleanServer, seedUser(MEYER));
    const sent = await officer.send("channel", 1001, "gleich weg");
    expect(sent["deleted"]).toBe(false);
    await officer.call("message/delete", { message_id: String(sent["id"]) });
    const listed = (await officer.content("channel", 1001)).find((m) => m["id"] === sent["id"]);
    expectShape(listed, message(goBool));
    expect(listed?.["deleted"]).toBe(true);
  });

  it("Stashcat contract - the push login answer", async () => {
    const socket = io(server.pushUrl, { path: "/socket.io", transports: ["websocket"] });
    sockets.push(socket);
    const confirmed = new Promise<Json>((resolve) => socket.once("new_device_connected", resolve));
    socket.on("connect", () =>
      socket.emit("userid", {
        hidden_id: meyer.userinfo["socket_id"],
        device_id: meyer.deviceId,
        client_key: meyer.clientKey,
      }),
    );
    expectShape(await confirmed, { device_id: goString, ip_address: goString });
  });
});
