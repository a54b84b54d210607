/**
 * The Stashcat test server from outside, as clients see it: form-encoded POSTs and socket.io, with the
 * encryption played by the client (crypto.ts). Every quirk the adapter must survive is asserted here, so
 * that the server keeps reproducing it.
 */
import { Writable } from "node:stream";
import { request } from "undici";
import { io, type Socket } from "socket.io-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  decryptBytes,
  encryptBytes,
  encryptText,
  newKey,
  unlockPrivateKey,
  unwrapChatKey,
  wrapChatKey,
} from "../../../bridges/stashcat/crypto.js";
import {
  StashcatServer,
  stashcatSeed,
  type SeedUser,
} from "../../harness/servers/stashcat/StashcatServer.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  StashcatTestUser,
  envelopeOf,
  postForm,
  postMultipart,
  type Envelope,
  type Json,
} from "../../helpers/stashcat.js";

// One set of keys for every server here: generating RSA keys is the slow part of a start.
const seed = stashcatSeed();
const seedUser = (id: number): SeedUser => {
  const user = seed.users.find((u) => u.id === id);
  if (user === undefined) throw new Error(`no seed user ${String(id)}`);
  return user;
};
const BRIDGE = 4700;
const MEYER = 4711;
const SCHULZ = 4712;

const sockets: Socket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.disconnect();
});

async function connect(user: StashcatTestUser): Promise<Socket> {
  const socket = await user.connectPush();
  sockets.push(socket);
  return socket;
}

/** Collects a socket's events of one name from now on. */
function collect(socket: Socket, event: string): Json[] {
  const seen: Json[] = [];
  socket.on(event, (payload: Json) => seen.push(payload));
  return seen;
}

function expectRefusal(envelope: Envelope, shortMessage: string): void {
  expect(envelope.status.value).toBe("ERROR");
  expect(envelope.status.short_message).toBe(shortMessage);
  expect(typeof envelope.status.message).toBe("string");
}

function heartbeat(socket: Socket): Promise<unknown> {
  return socket.timeout(5000).emitWithAck("heartbeat");
}

describe("Stashcat test server", () => {
  let server: StashcatServer;
  let meyer: StashcatTestUser;
  let schulz: StashcatTestUser;
  let bridge: StashcatTestUser;

  beforeAll(async () => {
    server = await StashcatServer.start({ seed });
    meyer = await StashcatTestUser.login(server, seedUser(MEYER));
    schulz = await StashcatTestUser.login(server, seedUser(SCHULZ));
    bridge = await StashcatTestUser.login(server, seedUser(BRIDGE));
  });
  afterAll(async () => {
    await server.stop();
  });

  describe("the envelope and the request form", () => {
    it("answers OK with short_message and message false, and signature a string", async () => {
      const answer = await postForm(server.apiUrl, "auth/check", meyer.auth());
      expect(answer.statusCode).toBe(200);
      expect(answer.contentType).toMatch(/^application\/json/);
      const envelope = envelopeOf(answer);
      expect(envelope.status).toEqual({ value: "OK", short_message: false, message: false });
      expect(envelope.signature).toBe("");
      expect(envelope.payload).toEqual({ success: true });
    });

    it("takes paths with or without a leading slash", async () => {
      for (const path of ["auth/check", "/auth/check", "auth/check/"]) {
        const envelope = envelopeOf(await postForm(server.apiUrl, path, meyer.auth()));
        expect(envelope.status.value, path).toBe("OK");
      }
    });

    it("refuses missing values with HTTP 200, naming them", async () => {
      const answer = await postForm(server.apiUrl, "message/send", {
        ...meyer.auth(),
        target: "channel",
        text: "abc",
      });
      expect(answer.statusCode).toBe(200);
      const envelope = envelopeOf(answer);
      expectRefusal(envelope, "missing_values");
      expect(envelope.status.message).toContain("channel_id");

      const noSession = envelopeOf(await postForm(server.apiUrl, "users/me", {}));
      expectRefusal(noSession, "missing_values");
      expect(noSession.status.message).toContain("client_key");
      expect(noSession.status.message).toContain("device_id");
    });

    it("refuses a JSON field that is not JSON, naming it", async () => {
      const answer = await postForm(server.apiUrl, "message/send", {
        ...meyer.auth(),
        target: "channel",
        channel_id: "1001",
        text: "abc",
        files: "[1,",
      });
      expect(answer.statusCode).toBe(200);
      const envelope = envelopeOf(answer);
      expectRefusal(envelope, "invalid_values");
      expect(envelope.status.message).toContain("files");

      const members = await meyer.post("message/createEncryptedConversation", { members: "{nope" });
      expectRefusal(members, "invalid_values");
      expect(members.status.message).toContain("members");
    });

    it("refuses an unknown endpoint, a GET and a number that is not one", async () => {
      expectRefusal(await meyer.post("message/teleport"), "unknown_endpoint");

      const get = await request(`${server.apiUrl}auth/check`, { method: "GET" });
      expect(get.statusCode).toBe(200);
      expectRefusal((await get.body.json()) as Envelope, "method_not_allowed");

      const notANumber = await meyer.post("channels/info", { channel_id: "eins" });
      expectRefusal(notANumber, "invalid_values");
      expect(notANumber.status.message).toContain("channel_id");
    });

    it("reads booleans as true|1 in any case", async () => {
      for (const spelling of ["true", "True", "TRUE", "1"]) {
        const key = await meyer.chatKey("channel", 1002);
        const text = encryptText(`spelt ${spelling}`, key);
        const message = (
          await meyer.call("message/send", {
            target: "channel",
            channel_id: "1002",
            text: text.text,
            iv: text.iv,
            encrypted: spelling,
          })
        )["message"] as Json;
        expect(message["encrypted"], spelling).toBe(true);
      }
      for (const spelling of ["false", "False", "0"]) {
        const message = (
          await meyer.call("message/send", {
            target: "channel",
            channel_id: "1002",
            text: `plain ${spelling}`,
            encrypted: spelling,
          })
        )["message"] as Json;
        expect(message["encrypted"], spelling).toBe(false);
        expect(message["iv"]).toBeNull();
      }
      const withMembers = (
        await meyer.call("channels/info", { channel_id: "1001", without_members: "False" })
      )["channels"] as Json;
      const without = (await meyer.call("channels/info", { channel_id: "1001", without_members: "True" }))[
        "channels"
      ] as Json;
      expect(withMembers["members"]).toHaveLength(3);
      expect(without).not.toHaveProperty("members");
    });

    it("logs refusals without passwords, client keys or text", async () => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          lines.push(chunk.toString("utf8"));
          callback();
        },
      });
      const logged = await StashcatServer.start({ seed, log: createLogger("debug", "stashcat", sink) });
      try {
        const user = seedUser(MEYER);
        const secretText = "Geheimer Lagebericht";
        await postForm(logged.apiUrl, "auth/login", { email: user.email, password: user.password });
        await postForm(logged.apiUrl, "auth/login", {
          email: user.email,
          password: "wrong-password-xyz",
          device_id: "d1",
          app_name: "t",
          encrypted: "true",
          callable: "false",
        });
        const session = await StashcatTestUser.login(logged, user);
        await postForm(logged.apiUrl, "message/send", {
          ...session.auth(),
          target: "channel",
          channel_id: "1002",
          text: secretText,
          files: "{",
        });
        logged.expireClientKeys();
        await postForm(logged.apiUrl, "users/me", session.auth());
        await eventually(() => (lines.length >= 4 ? true : undefined), 5000, "log lines");
        const log = lines.join("");
        expect(log).toContain("missing_values");
        expect(log).toContain("auth_invalid");
        for (const secret of [user.password, "wrong-password-xyz", session.clientKey, secretText])
          expect(log).not.toContain(secret);
      } finally {
        await logged.stop();
      }
    });
  });

  describe("accounts", () => {
    it("logs in with the hidden socket id, the public key and the company role", () => {
      const info = meyer.userinfo;
      expect(info["id"]).toBe(String(MEYER));
      expect(info["first_name"]).toBe("POK");
      expect(info["last_name"]).toBe("Meyer");
      expect(info["email"]).toBe(seedUser(MEYER).email);
      expect(info["public_key"]).toBe(seedUser(MEYER).publicKey);
      expect(info["socket_id"]).toMatch(/^[0-9a-f]{32}$/);
      expect(info["socket_id"]).not.toBe(schulz.userinfo["socket_id"]);
      expect((info["roles"] as Json[])[0]?.["company_id"]).toBe("1");
      expect(meyer.clientKey).not.toBe(schulz.clientKey);
    });

    it("refuses a wrong password and a login without app data", async () => {
      const user = seedUser(MEYER);
      const fields = {
        email: user.email,
        password: "falsch",
        device_id: "d",
        app_name: "t",
        encrypted: "true",
        callable: "true",
      };
      expectRefusal(envelopeOf(await postForm(server.apiUrl, "auth/login", fields)), "login_failed");
      const incomplete = envelopeOf(
        await postForm(server.apiUrl, "auth/login", { email: user.email, password: user.password }),
      );
      expectRefusal(incomplete, "missing_values");
      expect(incomplete.status.message).toContain("app_name");
    });

    it("binds a client_key to the device that logged in", async () => {
      expectRefusal(await meyer.post("users/me", { device_id: "another-device" }), "auth_invalid");
      expectRefusal(await meyer.post("users/me", { client_key: "0".repeat(40) }), "auth_invalid");
    });

    it("describes users, with the public key unless withkey is false", async () => {
      const me = (await meyer.call("users/me", { withkey: "false" }))["user"] as Json;
      expect(me["id"]).toBe(String(MEYER));
      expect(me).not.toHaveProperty("public_key");
      const other = (await meyer.call("users/info", { user_id: String(SCHULZ), withkey: "true" }))[
        "user"
      ] as Json;
      expect(other["id"]).toBe(String(SCHULZ));
      expect(other["last_name"]).toBe("Schulz");
      expect(other["public_key"]).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      expectRefusal(await meyer.post("users/info", { user_id: "9999" }), "not_found");
    });

    it("lists the companies with string ids", async () => {
      const companies = (await meyer.call("company/member", { no_cache: "true" }))["companies"] as Json[];
      expect(companies).toHaveLength(1);
      expect(companies[0]?.["id"]).toBe("1");
      expect(companies[0]?.["name"]).toBe("Polizei Niedersachsen");
    });

    it("hands out the locked private key in the form asked for: JWK with format=jwk, the legacy PEM otherwise", async () => {
      const pem = (await schulz.call("security/get_private_key"))["keys"] as Json;
      expect(pem["user_id"]).toBe(String(SCHULZ));
      expect(pem["deleted"]).toBeNull();
      expect(pem["public_key"]).toBe(seedUser(SCHULZ).publicKey);
      const pemForm = JSON.parse(pem["private_key"] as string) as Json;
      expect(pemForm["private"]).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
      expect(() => unlockPrivateKey(pem["private_key"] as string, "wrong")).toThrow();

      const jwk = (await schulz.call("security/get_private_key", { format: "jwk", type: "encryption" }))[
        "keys"
      ] as Json;
      expect(jwk["format"]).toBe("jwk");
      const jwkForm = JSON.parse(jwk["private_key"] as string) as Json;
      expect(Object.keys(jwkForm).sort()).toEqual(["ciphertext", "iv", "key_derivation_properties"]);
      const key = unlockPrivateKey(jwk["private_key"] as string, seedUser(SCHULZ).encryptionPassword);
      expect(key.asymmetricKeyType).toBe("rsa");
      const fromPem = unlockPrivateKey(pem["private_key"] as string, seedUser(SCHULZ).encryptionPassword);
      expect(fromPem.export({ format: "jwk" })).toEqual(key.export({ format: "jwk" }));

      // Meyer's account has its key in the legacy form only.
      expectRefusal(
        await meyer.post("security/get_private_key", { format: "jwk", type: "encryption" }),
        "not_found",
      );
      const legacy = (await meyer.call("security/get_private_key"))["keys"] as Json;
      expect(JSON.parse(legacy["private_key"] as string)).toHaveProperty("private");
    });

    it("logs out: the client_key is dead", async () => {
      const session = await StashcatTestUser.login(server, seedUser(MEYER));
      expect((await session.call("auth/logout"))["success"]).toBe(true);
      expectRefusal(await session.post("auth/check"), "auth_invalid");
      expect((await meyer.call("auth/check"))["success"]).toBe(true);
    });
  });

  describe("channels and conversations", () => {
    it("lists subscribed channels with string ids and each member's wrapped key", async () => {
      const channels = (await meyer.call("channels/subscripted", { company: "1" }))["channels"] as Json[];
      expect(channels.map((c) => c["id"])).toEqual(["1001", "1002"]);
      const einsatz = channels[0] ?? {};
      expect(einsatz["name"]).toBe("Einsatz");
      expect(einsatz["key"]).not.toMatch(/^[0-9a-f]{64}$/);
      const key = unwrapChatKey(einsatz["key"] as string, await meyer.privateKey());
      expect(key.equals(seed.channels[0]?.key ?? Buffer.alloc(0))).toBe(true);

      const bridgeChannels = (await bridge.call("channels/subscripted", { company: "1" }))[
        "channels"
      ] as Json[];
      expect(bridgeChannels.map((c) => c["id"])).toEqual(["1001"]);
      expectRefusal(await bridge.post("channels/subscripted", {}), "missing_values");
    });

    it("answers channels/info under the plural key, with a numeric id", async () => {
      const payload = await meyer.call("channels/info", { channel_id: "1001", without_members: "true" });
      expect(payload).not.toHaveProperty("channel");
      const channel = payload["channels"] as Json;
      expect(Array.isArray(channel)).toBe(false);
      expect(channel["id"]).toBe(1001);
      expect(channel["name"]).toBe("Einsatz");
      expect((channel["membership"] as Json)["is_member"]).toBe(true);
      expectRefusal(await meyer.post("channels/info", { channel_id: "1999" }), "not_found");
    });

    it("gives a non-member no key to a channel", async () => {
      const channel = (await bridge.call("channels/info", { channel_id: "1002" }))["channels"] as Json;
      expect(channel["key"]).toBeNull();
      expect((channel["membership"] as Json)["is_member"]).toBe(false);
    });

    it("lists conversations and one in detail with the requester's key", async () => {
      const list = (await meyer.call("message/conversations", { limit: "30", offset: "0", archive: "0" }))[
        "conversations"
      ] as Json[];
      expect(list.map((c) => c["id"])).toContain("2001");
      const conversation = (await schulz.call("message/conversation", { conversation_id: "2001" }))[
        "conversation"
      ] as Json;
      expect(conversation["id"]).toBe("2001");
      expect((conversation["members"] as Json[]).map((m) => m["id"]).sort()).toEqual([
        String(MEYER),
        String(SCHULZ),
      ]);
      const key = unwrapChatKey(conversation["key"] as string, await schulz.privateKey());
      expect(key.equals(seed.conversations[0]?.key ?? Buffer.alloc(0))).toBe(true);
      expectRefusal(await bridge.post("message/conversation", { conversation_id: "2001" }), "no_permission");
    });

    it("creates an encrypted conversation once per member set and keeps its first keys", async () => {
      const meyerKey = (await bridge.call("users/info", { user_id: String(MEYER), withkey: "true" }))[
        "user"
      ] as Json;
      const chatKey = newKey();
      const members = (key: Buffer): string =>
        JSON.stringify([
          { id: BRIDGE, key: wrapChatKey(key, seedUser(BRIDGE).publicKey) },
          { id: String(MEYER), key: wrapChatKey(key, meyerKey["public_key"] as string) },
        ]);
      const created = (
        await bridge.call("message/createEncryptedConversation", { members: members(chatKey) })
      )["conversation"] as Json;
      expect(created["id"]).toMatch(/^\d+$/);
      expect(created["id"]).not.toBe("2001");
      expect(unwrapChatKey(created["key"] as string, await bridge.privateKey()).equals(chatKey)).toBe(true);

      const again = (
        await meyer.call("message/createEncryptedConversation", {
          members: JSON.stringify([
            { id: MEYER, key: wrapChatKey(newKey(), seedUser(MEYER).publicKey) },
            { id: BRIDGE, key: wrapChatKey(newKey(), seedUser(BRIDGE).publicKey) },
          ]),
        })
      )["conversation"] as Json;
      expect(again["id"]).toBe(created["id"]);
      expect(unwrapChatKey(again["key"] as string, await meyer.privateKey()).equals(chatKey)).toBe(true);

      // The existing conversation between Meyer and Schulz is found too.
      const existing = (
        await meyer.call("message/createEncryptedConversation", {
          members: JSON.stringify([
            { id: MEYER, key: "x" },
            { id: SCHULZ, key: "y" },
          ]),
        })
      )["conversation"] as Json;
      expect(existing["id"]).toBe("2001");

      const withoutSelf = await bridge.post("message/createEncryptedConversation", {
        members: JSON.stringify([{ id: MEYER, key: "abc" }]),
      });
      expectRefusal(withoutSelf, "invalid_values");
      // The ids form needs the identifier of the key the members are to get.
      const idsOnly = await bridge.post("message/createEncryptedConversation", {
        members: JSON.stringify([BRIDGE, MEYER]),
      });
      expectRefusal(idsOnly, "missing_values");
      const unknown = await bridge.post("message/createEncryptedConversation", {
        members: JSON.stringify([
          { id: BRIDGE, key: "a" },
          { id: 9999, key: "b" },
        ]),
      });
      expectRefusal(unknown, "not_found");
    });
    it("creates an encrypted conversation from member ids and a key identifier too, the keys given after", async () => {
      const identifier = "5f".repeat(16);
      const created = (
        await bridge.call("message/createEncryptedConversation", {
          members: JSON.stringify([String(SCHULZ)]),
          unique_identifier: identifier,
        })
      )["conversation"] as Json;
      expect(created["unique_identifier"]).toBe(identifier);
      expect(created["key"]).toBeNull();
      expect((created["members"] as Json[]).map((m) => m["id"]).sort()).toEqual([
        String(BRIDGE),
        String(SCHULZ),
      ]);
      const id = created["id"] as string;
      // The keys come after, wrapped for each member, as members without keys get them.
      const chatKey = newKey();
      const schulzInfo = (await bridge.call("users/info", { user_id: String(SCHULZ), withkey: "true" }))[
        "user"
      ] as Json;
      await bridge.call("security/set_missing_key", {
        type: "conversation",
        id,
        keys: JSON.stringify([
          {
            user_id: String(BRIDGE),
            key: wrapChatKey(chatKey, seedUser(BRIDGE).publicKey),
            key_signature: "",
          },
          {
            user_id: SCHULZ,
            key: wrapChatKey(chatKey, schulzInfo["public_key"] as string),
            key_signature: "",
          },
        ]),
      });
      const forSchulz = (await schulz.call("message/conversation", { conversation_id: id }))[
        "conversation"
      ] as Json;
      expect(unwrapChatKey(forSchulz["key"] as string, await schulz.privateKey()).equals(chatKey)).toBe(true);
      // A key once given stays; someone outside the conversation gets none.
      expectRefusal(
        await bridge.post("security/set_missing_key", {
          type: "conversation",
          id,
          keys: JSON.stringify([{ user_id: MEYER, key: "abc", key_signature: "" }]),
        }),
        "invalid_values",
      );
      await bridge.call("security/set_missing_key", {
        type: "conversation",
        id,
        keys: JSON.stringify([{ user_id: SCHULZ, key: wrapChatKey(newKey(), seedUser(SCHULZ).publicKey) }]),
      });
      const again = (await schulz.call("message/conversation", { conversation_id: id }))[
        "conversation"
      ] as Json;
      expect(again["key"]).toBe(forSchulz["key"]);
      expectRefusal(
        await bridge.post("message/createEncryptedConversation", {
          members: JSON.stringify([SCHULZ]),
          unique_identifier: "kein hex",
        }),
        "invalid_values",
      );
    });
  });

  describe("messages", () => {
    it("carries an encrypted message from Meyer to Schulz, by list and by push", async () => {
      const socket = await connect(schulz);
      const syncs = collect(socket, "message_sync");
      const notifications = collect(socket, "notification");

      const sent = await meyer.send("channel", 1001, "Lage: Einsatz am Hauptbahnhof 🚓");
      // Sic: a number here, a string in lists and pushes.
      expect(typeof sent["time"]).toBe("number");
      expect(sent["id"]).toEqual(expect.any(Number));
      expect(sent["channel_id"]).toBe(1001);
      expect(sent["conversation_id"]).toBe(0);
      expect(sent["text"]).toMatch(/^[0-9a-f]+$/);
      expect(sent["text"]).not.toContain("Lage");

      const listed = (await schulz.content("channel", 1001)).find((m) => m["id"] === sent["id"]);
      expect(listed).toBeDefined();
      expect(typeof listed?.["time"]).toBe("string");
      expect(listed?.["time"]).toBe(String(sent["time"]));
      expect(listed?.["kind"]).toBe("message");
      expect(listed).toHaveProperty("reciever");
      expect((listed?.["sender"] as Json)["id"]).toBe(String(MEYER));
      expect(await schulz.decrypt("channel", 1001, listed ?? {})).toBe("Lage: Einsatz am Hauptbahnhof 🚓");

      const pushed = await eventually(() => syncs.find((m) => m["id"] === sent["id"]), 5000, "message_sync");
      expect(typeof pushed["time"]).toBe("string");
      expect(await schulz.decrypt("channel", 1001, pushed)).toBe("Lage: Einsatz am Hauptbahnhof 🚓");

      const notified = await eventually(
        () => notifications.find((n) => (n["message"] as Json)["id"] === sent["id"]),
        5000,
        "notification",
      );
      const channel = notified["channel"] as Json;
      expect(channel["id"]).toBe("1001");
      const key = unwrapChatKey(channel["key"] as string, await schulz.privateKey());
      expect(key.equals(await schulz.chatKey("channel", 1001))).toBe(true);
    });

    it("pushes message_sync to the sender's sockets but no notification", async () => {
      const socket = await connect(meyer);
      const syncs = collect(socket, "message_sync");
      const notifications = collect(socket, "notification");
      const sent = await meyer.send("channel", 1002, "an mich selbst");
      await eventually(() => syncs.find((m) => m["id"] === sent["id"]), 5000, "own message_sync");
      // A later push proves the socket was served in order: no notification came before it.
      const other = await schulz.send("channel", 1002, "Antwort");
      await eventually(() => notifications.find((n) => (n["message"] as Json)["id"] === other["id"]), 5000);
      expect(notifications.some((n) => (n["message"] as Json)["id"] === sent["id"])).toBe(false);
    });

    it("shows a channel's own entries next to its messages, kind other than message", async () => {
      const entries = await meyer.content("channel", 1001, { limit: "100" });
      const own = entries.filter((m) => m["kind"] !== "message");
      expect(own.length).toBeGreaterThan(0);
      expect(own[0]?.["id"]).toEqual(expect.any(Number));
      expect(entries.every((m) => m["kind"] === "message" || m["kind"] === "channel_created")).toBe(true);
    });

    it("carries a conversation message, with reciever naming the other member", async () => {
      const socket = await connect(meyer);
      const notifications = collect(socket, "notification");
      const sent = await schulz.send("conversation", 2001, "Kaffee?");
      expect(sent["conversation_id"]).toBe(2001);
      expect(sent["channel_id"]).toBe(0);
      const listed = (await meyer.content("conversation", 2001)).find((m) => m["id"] === sent["id"]) ?? {};
      expect((listed["reciever"] as Json[]).map((r) => r["id"])).toEqual([String(MEYER)]);
      expect(await meyer.decrypt("conversation", 2001, listed)).toBe("Kaffee?");
      const notified = await eventually(
        () => notifications.find((n) => (n["message"] as Json)["id"] === sent["id"]),
        5000,
      );
      expect((notified["conversation"] as Json)["id"]).toBe("2001");
      expect(
        unwrapChatKey((notified["conversation"] as Json)["key"] as string, await meyer.privateKey()).equals(
          await meyer.chatKey("conversation", 2001),
        ),
      ).toBe(true);
    });

    it("refuses a non-member to send or read", async () => {
      const send = await bridge.post("message/send", {
        target: "channel",
        channel_id: "1002",
        text: "hallo",
        encrypted: "false",
      });
      expectRefusal(send, "no_permission");
      const read = await bridge.post("message/content", {
        source: "channel",
        channel_id: "1002",
        limit: "10",
      });
      expectRefusal(read, "no_permission");
      const inConversation = await bridge.post("message/send", {
        target: "conversation",
        conversation_id: "2001",
        text: "hallo",
      });
      expectRefusal(inConversation, "no_permission");
    });

    it("keeps what it is given: location, metainfo, reply_to as a number or an object", async () => {
      const key = await meyer.chatKey("channel", 1001);
      const first = await meyer.send("channel", 1001, "Ausgangslage");
      const text = encryptText("mit Ort", key);
      const latitude = encryptBytes(Buffer.from("52.37"), key, Buffer.from(text.iv, "hex")).data.toString(
        "hex",
      );
      const longitude = encryptBytes(Buffer.from("9.73"), key, Buffer.from(text.iv, "hex")).data.toString(
        "hex",
      );
      const reply = (
        await meyer.call("message/send", {
          target: "channel",
          channel_id: "1001",
          text: text.text,
          iv: text.iv,
          encrypted: "true",
          metainfo: JSON.stringify({ v: 1, style: "md" }),
          reply_to: String(first["id"]),
          latitude,
          longitude,
        })
      )["message"] as Json;
      expect(reply["reply_to"]).toBe(first["id"]);
      expect(reply["metainfo"]).toEqual({ v: 1, style: "md" });
      expect(reply["location"]).toEqual({ latitude, longitude, encrypted: true, iv: text.iv });

      const nested = (
        await meyer.call("message/send", {
          target: "channel",
          channel_id: "1001",
          text: "plain",
          reply_to: JSON.stringify({ message_id: first["id"], message_hash: "", message_verification: "" }),
        })
      )["message"] as Json;
      expect(nested["reply_to"]).toBe(first["id"]);

      const elsewhere = await meyer.post("message/send", {
        target: "channel",
        channel_id: "1002",
        text: "x",
        reply_to: String(first["id"]),
      });
      expectRefusal(elsewhere, "invalid_values");
      expectRefusal(
        await meyer.post("message/send", { target: "channel", channel_id: "1001", text: "" }),
        "missing_values",
      );
      expectRefusal(
        await meyer.post("message/send", { target: "group", channel_id: "1001", text: "x" }),
        "invalid_values",
      );
      // url as a JSON array, as most clients send it, or as one plain URL, as stashcat-api does.
      for (const url of ["[]", JSON.stringify(["https://lage.example/karte"]), "https://lage.example/karte"])
        expect(
          (await meyer.post("message/send", { target: "channel", channel_id: "1001", text: "mit Link", url }))
            .status.value,
        ).toBe("OK");
      expectRefusal(
        await meyer.post("message/send", { target: "channel", channel_id: "1001", text: "x", url: "{}" }),
        "invalid_values",
      );
    });

    it("lets the sender or a channel manager delete, marking the message deleted", async () => {
      const socket = await connect(schulz);
      const syncs = collect(socket, "message_sync");
      const byMeyer = await meyer.send("channel", 1001, "von Meyer");
      const bySchulz = await schulz.send("channel", 1001, "von Schulz");

      // Schulz manages 1002, not 1001; Meyer manages 1001.
      expectRefusal(
        await schulz.post("message/delete", { message_id: String(byMeyer["id"]) }),
        "no_permission",
      );
      expectRefusal(
        await bridge.post("message/delete", { message_id: String(bySchulz["id"]) }),
        "no_permission",
      );
      expect((await meyer.call("message/delete", { message_id: String(bySchulz["id"]) }))["success"]).toBe(
        true,
      );

      // A live message says deleted null; a deleted one the time of its deletion, quoted.
      expect(byMeyer["deleted"]).toBeNull();
      const listed = (await schulz.content("channel", 1001, { limit: "100" })).find(
        (m) => m["id"] === bySchulz["id"],
      );
      expect(listed?.["deleted"]).toMatch(/^\d{10}$/);
      expect(Math.abs(Number(listed?.["deleted"]) - Date.now() / 1000)).toBeLessThan(60);
      expect(listed?.["is_deleted_by_manager"]).toBe(true);
      expect(listed?.["text"]).toBe("");
      const pushed = await eventually(
        () => syncs.find((m) => m["id"] === bySchulz["id"] && typeof m["deleted"] === "string"),
        5000,
        "deletion pushed",
      );
      expect(pushed["kind"]).toBe("message");

      expect((await meyer.call("message/delete", { message_id: String(byMeyer["id"]) }))["success"]).toBe(
        true,
      );
      const own = (await meyer.content("channel", 1001, { limit: "100" })).find(
        (m) => m["id"] === byMeyer["id"],
      );
      expect(own?.["is_deleted_by_manager"]).toBe(false);
      expectRefusal(await meyer.post("message/delete", { message_id: "1" }), "not_found");
    });

    it("counts likes per user and pushes the change", async () => {
      const socket = await connect(meyer);
      const syncs = collect(socket, "message_sync");
      const sent = await meyer.send("channel", 1001, "Gefällt mir?");
      const liked = await schulz.call("message/like", { message_id: String(sent["id"]) });
      expect(liked).toEqual({ message_id: sent["id"], likes: 1, liked: true });
      // Liking twice counts once.
      expect((await schulz.call("message/like", { message_id: String(sent["id"]) }))["likes"]).toBe(1);

      const forMeyer = (await meyer.content("channel", 1001, { limit: "100" })).find(
        (m) => m["id"] === sent["id"],
      );
      expect(forMeyer?.["likes"]).toBe(1);
      expect(forMeyer?.["liked"]).toBe(false);
      const forSchulz = (await schulz.content("channel", 1001, { limit: "100" })).find(
        (m) => m["id"] === sent["id"],
      );
      expect(forSchulz?.["liked"]).toBe(true);
      await eventually(
        () => syncs.find((m) => m["id"] === sent["id"] && m["likes"] === 1),
        5000,
        "like pushed",
      );

      expect(await schulz.call("message/unlike", { message_id: String(sent["id"]) })).toEqual({
        message_id: sent["id"],
        likes: 0,
        liked: false,
      });
      expectRefusal(await bridge.post("message/like", { message_id: "999999" }), "not_found");
    });
  });

  describe("files", () => {
    const plain = Buffer.from(
      Array.from({ length: 3000 }, (_, i) => String.fromCharCode(65 + (i % 26))).join(""),
      "utf8",
    );

    /** Uploads bytes in chunks with the resumable.js fields; every answer. */
    async function resumable(
      user: StashcatTestUser,
      bytes: Buffer,
      fields: Record<string, string>,
      chunkSize: number,
    ): Promise<Envelope[]> {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += chunkSize) chunks.push(bytes.subarray(at, at + chunkSize));
      const identifier = `${String(bytes.length)}-${Math.random().toString(36).slice(2)}`;
      const answers: Envelope[] = [];
      for (const [index, chunk] of chunks.entries())
        answers.push(
          envelopeOf(
            await postMultipart(
              server.apiUrl,
              "file/upload",
              {
                ...user.auth(),
                resumableChunkNumber: String(index + 1),
                resumableChunkSize: String(chunkSize),
                resumableCurrentChunkSize: String(chunk.length),
                resumableTotalSize: String(bytes.length),
                resumableType: "text/plain",
                resumableIdentifier: identifier,
                resumableFilename: "lagebericht.txt",
                resumableRelativePath: "lagebericht.txt",
                resumableTotalChunks: String(chunks.length),
                folder: "0",
                media_width: "0",
                media_height: "0",
                ...fields,
              },
              { field: "file", bytes: chunk },
            ),
          ),
        );
      return answers;
    }

    it("takes an encrypted file in chunks, its key per chat, and gives it back to a member", async () => {
      const chatKey = await meyer.chatKey("channel", 1001);
      const fileKey = newKey();
      const body = encryptBytes(plain, fileKey);
      const answers = await resumable(
        meyer,
        body.data,
        { type: "channel", type_id: "1001", encrypted: "true", iv: body.iv.toString("hex") },
        1024,
      );
      expect(answers).toHaveLength(3);
      for (const answer of answers) expect(answer.status.value).toBe("OK");
      const first = answers[0]?.payload["file"] as Json;
      const last = answers.at(-1)?.payload["file"] as Json;
      expect(first["id"]).toBe(last["id"]);
      expect(first["status"]).toBe("uploading");
      expect(last["status"]).toBe("ok");
      expect(last["size_byte"]).toBe(String(body.data.length));
      expect(last["e2e_iv"]).toBe(body.iv.toString("hex"));
      const fileId = last["id"] as string;

      const lockedKey = encryptBytes(fileKey, chatKey);
      await meyer.call("security/set_file_access_key", {
        file_id: fileId,
        target: "channel",
        target_id: "1001",
        key: lockedKey.data.toString("hex"),
        iv: lockedKey.iv.toString("hex"),
      });
      expectRefusal(
        await meyer.post("security/set_file_access_key", {
          file_id: fileId,
          target: "channel",
          target_id: "1001",
          key: "zz",
          iv: "00",
        }),
        "invalid_values",
      );

      // Schulz opens it with nothing but her own private key.
      const info = (await schulz.call("file/info", { file_id: fileId }))["file"] as Json;
      expect(info["id"]).toBe(fileId);
      expect(info["encrypted"]).toBe(true);
      const keys = info["keys"] as Json[];
      expect(keys).toHaveLength(1);
      expect(keys[0]?.["type"]).toBe("channel");
      expect(keys[0]?.["chat_id"]).toBe("1001");
      const schulzChatKey = unwrapChatKey(keys[0]?.["chat_key"] as string, await schulz.privateKey());
      const recoveredFileKey = decryptBytes(
        Buffer.from(keys[0]?.["key"] as string, "hex"),
        schulzChatKey,
        Buffer.from(keys[0]?.["iv"] as string, "hex"),
      );
      expect(recoveredFileKey.equals(fileKey)).toBe(true);

      // The download takes its session form-encoded and multipart alike.
      const formDownload = await postForm(server.apiUrl, `file/download?id=${fileId}`, schulz.auth());
      expect(formDownload.statusCode).toBe(200);
      expect(formDownload.contentType).toBe("text/plain");
      expect(formDownload.body.equals(body.data)).toBe(true);
      expect(
        decryptBytes(
          formDownload.body,
          recoveredFileKey,
          Buffer.from(info["e2e_iv"] as string, "hex"),
        ).equals(plain),
      ).toBe(true);
      const multipartDownload = await postMultipart(
        server.apiUrl,
        `file/download?id=${fileId}`,
        bridge.auth(),
      );
      expect(multipartDownload.statusCode).toBe(200);
      expect(multipartDownload.body.equals(body.data)).toBe(true);

      // Sent with a message, the file shows in it.
      const text = encryptText("Bericht anbei", chatKey);
      const sent = (
        await meyer.call("message/send", {
          target: "channel",
          channel_id: "1001",
          text: text.text,
          iv: text.iv,
          encrypted: "true",
          files: JSON.stringify([Number(fileId)]),
        })
      )["message"] as Json;
      const files = sent["files"] as Json[];
      expect(files.map((f) => f["id"])).toEqual([fileId]);
      expect(sent["has_file_attached"]).toBe(true);
    });

    it("serves a chat's file to its members only", async () => {
      const answers = await resumable(schulz, plain, { type: "channel", type_id: "1002" }, 4096);
      const file = answers[0]?.payload["file"] as Json;
      expect(file["status"]).toBe("ok");
      const fileId = file["id"] as string;
      const denied = await postForm(server.apiUrl, `file/download?id=${fileId}`, bridge.auth());
      expect(denied.statusCode).toBe(200);
      expect(denied.contentType).toMatch(/^application\/json/);
      expectRefusal(envelopeOf(denied), "no_permission");
      expectRefusal(await bridge.post("file/info", { file_id: fileId }), "no_permission");
      const allowed = await postForm(server.apiUrl, `file/download?id=${fileId}`, meyer.auth());
      expect(allowed.body.equals(plain)).toBe(true);
      expectRefusal(
        envelopeOf(await postForm(server.apiUrl, "file/download?id=123", meyer.auth())),
        "not_found",
      );
      const upload = await postMultipart(
        server.apiUrl,
        "file/upload",
        {
          ...bridge.auth(),
          resumableChunkNumber: "1",
          resumableTotalChunks: "1",
          resumableTotalSize: "3",
          resumableIdentifier: "x",
          resumableFilename: "x.txt",
          type: "channel",
          type_id: "1002",
        },
        { field: "file", bytes: Buffer.from("abc") },
      );
      expectRefusal(envelopeOf(upload), "no_permission");
    });

    it("takes an upload context and 1-based chunks in a part named -", async () => {
      const context = await meyer.call("file/create_upload_context", {
        filename: "foto.jpg",
        mime: "image/jpeg",
        filesize: String(plain.length),
        num_total_chunks: "2",
        chunk_size: "2000",
        folder_type: "conversation",
        folder_type_id: "2001",
      });
      const identifier = context["identifier"] as string;
      expect(identifier).toMatch(/^[0-9a-f]+$/);
      const chunk = async (number: number, bytes: Buffer, field = "-"): Promise<Envelope> =>
        envelopeOf(
          await postMultipart(
            server.apiUrl,
            "file/upload_chunk",
            {
              ...meyer.auth(),
              identifier,
              current_chunk_number: String(number),
              current_chunk_size: String(bytes.length),
            },
            { field, bytes },
          ),
        );
      expectRefusal(await chunk(0, plain.subarray(0, 2000)), "invalid_values");
      expectRefusal(await chunk(1, plain.subarray(0, 2000), "file"), "missing_values");
      const firstAnswer = await chunk(1, plain.subarray(0, 2000));
      expect(firstAnswer.status.value).toBe("OK");
      expect(firstAnswer.payload).not.toHaveProperty("file");
      const lastAnswer = await chunk(2, plain.subarray(2000));
      const file = lastAnswer.payload["file"] as Json;
      expect(file["name"]).toBe("foto.jpg");
      expect(file["mime"]).toBe("image/jpeg");
      expect(file["folder_type"]).toBe("conversation");
      const download = await postForm(
        server.apiUrl,
        `file/download?id=${file["id"] as string}`,
        schulz.auth(),
      );
      expect(download.body.equals(plain)).toBe(true);
      expect(download.contentType).toBe("image/jpeg");
    });

    it("refuses a file larger than maxUploadBytes with an envelope", async () => {
      const small = await StashcatServer.start({ seed, maxUploadBytes: 1000 });
      try {
        const user = await StashcatTestUser.login(small, seedUser(MEYER));
        const fields = {
          ...user.auth(),
          resumableChunkNumber: "1",
          resumableTotalChunks: "1",
          resumableIdentifier: "big",
          resumableFilename: "big.bin",
          type: "personal",
          type_id: String(MEYER),
        };
        const announced = await postMultipart(
          small.apiUrl,
          "file/upload",
          { ...fields, resumableTotalSize: "5000" },
          { field: "file", bytes: Buffer.alloc(10) },
        );
        expect(announced.statusCode).toBe(200);
        expectRefusal(envelopeOf(announced), "file_too_large");
        // A part larger than the limit, whatever was announced.
        const oversized = await postMultipart(
          small.apiUrl,
          "file/upload",
          { ...fields, resumableTotalSize: "10" },
          { field: "file", bytes: Buffer.alloc(5000) },
        );
        expect(oversized.statusCode).toBe(200);
        expectRefusal(envelopeOf(oversized), "file_too_large");
        const fits = await postMultipart(
          small.apiUrl,
          "file/upload",
          { ...fields, resumableIdentifier: "fits", resumableTotalSize: "900" },
          { field: "file", bytes: Buffer.alloc(900) },
        );
        expect(envelopeOf(fits).status.value).toBe("OK");
      } finally {
        await small.stop();
      }
    });
  });

  describe("push", () => {
    it("refuses a push login with the wrong hidden_id or a dead client_key, and keeps the socket", async () => {
      const socket = io(server.pushUrl, { path: "/socket.io", transports: ["websocket"] });
      sockets.push(socket);
      const refusals = collect(socket, "unauthorized");
      await eventually(() => (socket.connected ? true : undefined), 5000, "connected");
      expect(await heartbeat(socket)).toBe(false);
      socket.emit("userid", {
        hidden_id: schulz.userinfo["socket_id"],
        device_id: meyer.deviceId,
        client_key: meyer.clientKey,
      });
      socket.emit("userid", {
        hidden_id: meyer.userinfo["socket_id"],
        device_id: meyer.deviceId,
        client_key: "dead",
      });
      await eventually(() => (refusals.length === 2 ? true : undefined), 5000, "two refusals");
      expect(await heartbeat(socket)).toBe(false);

      const confirmed = new Promise<Json>((resolve) => socket.once("new_device_connected", resolve));
      socket.emit("userid", {
        hidden_id: meyer.userinfo["socket_id"],
        device_id: meyer.deviceId,
        client_key: meyer.clientKey,
      });
      expect((await confirmed)["device_id"]).toBe(meyer.deviceId);
      expect(await heartbeat(socket)).toBe(true);
    });

    it("accepts started-typing in both forms and ignores it", async () => {
      const socket = await connect(schulz);
      socket.emit("started-typing", schulz.deviceId, schulz.clientKey, "channel", 1001);
      socket.emit("started-typing", "channel", 1001);
      expect(await heartbeat(socket)).toBe(true);
      expect(socket.connected).toBe(true);
    });

    it("shows who is online", async () => {
      const before = (await meyer.call("users/info", { user_id: String(BRIDGE) }))["user"] as Json;
      expect(before["online"]).toBe(false);
      await connect(bridge);
      const after = (await meyer.call("users/info", { user_id: String(BRIDGE) }))["user"] as Json;
      expect(after["online"]).toBe(true);
    });

    it("drops every connection; clients reconnect and log in again", async () => {
      const socket = await connect(schulz);
      const reasons: string[] = [];
      socket.on("disconnect", (reason) => reasons.push(reason));
      const confirmations = collect(socket, "new_device_connected");
      const syncs = collect(socket, "message_sync");
      server.dropPushConnections();
      await eventually(() => (reasons.length > 0 ? true : undefined), 5000, "disconnect");
      expect(reasons[0]).toBe("transport close");
      await eventually(() => (confirmations.length > 0 ? true : undefined), 10_000, "logged in again");
      const sent = await meyer.send("channel", 1001, "nach dem Abbruch");
      await eventually(() => syncs.find((m) => m["id"] === sent["id"]), 5000, "push after reconnect");
    });
  });
});

describe("Stashcat test server: message pages", () => {
  let server: StashcatServer;
  let meyer: StashcatTestUser;
  let ids: number[];

  beforeAll(async () => {
    server = await StashcatServer.start({ seed });
    meyer = await StashcatTestUser.login(server, seedUser(MEYER));
    ids = [];
    for (const n of [1, 2, 3, 4, 5])
      ids.push((await meyer.send("conversation", 2001, `Nachricht ${String(n)}`))["id"] as number);
  });
  afterAll(async () => {
    await server.stop();
  });

  const page = async (fields: Record<string, string>): Promise<number[]> =>
    (await meyer.content("conversation", 2001, fields)).map((m) => m["id"] as number);

  it("gives the newest page first, oldest first within it", async () => {
    expect(await page({ limit: "2", offset: "0" })).toEqual([ids[3], ids[4]]);
    expect(await page({ limit: "2", offset: "2" })).toEqual([ids[1], ids[2]]);
    expect(await page({ limit: "2", offset: "4" })).toEqual([ids[0]]);
    expect(await page({ limit: "2", offset: "9" })).toEqual([]);
    expect(await page({ limit: "50", offset: "0" })).toEqual(ids);
  });

  it("gives what follows after_message_id, oldest first, up to limit", async () => {
    expect(await page({ limit: "2", after_message_id: String(ids[1]) })).toEqual([ids[2], ids[3]]);
    expect(await page({ limit: "10", after_message_id: String(ids[4]) })).toEqual([]);
  });

  it("keeps channel and conversation ids apart: the wrong source fails even with limit 0", async () => {
    expect(await page({ limit: "0" })).toEqual([]);
    expectRefusal(
      await meyer.post("message/content", { source: "channel", channel_id: "2001", limit: "0" }),
      "not_found",
    );
    expectRefusal(await meyer.post("message/content", { source: "chat", chat_id: "2001" }), "invalid_values");
  });
});

describe("Stashcat test server: sessions", () => {
  it("answers auth_invalid for every session after expireClientKeys, and lets clients log in again", async () => {
    const server = await StashcatServer.start({ seed });
    try {
      const meyer = await StashcatTestUser.login(server, seedUser(MEYER));
      const socket = await meyer.connectPush();
      sockets.push(socket);
      expect(await heartbeat(socket)).toBe(true);
      server.expireClientKeys();
      const answer = await postForm(server.apiUrl, "auth/check", meyer.auth());
      expect(answer.statusCode).toBe(200);
      expectRefusal(envelopeOf(answer), "auth_invalid");
      // The push socket of a dead session is no longer served.
      expect(await heartbeat(socket)).toBe(false);
      const again = await StashcatTestUser.login(server, seedUser(MEYER));
      expect((await again.call("auth/check"))["success"]).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it("expires a client_key after clientKeyTtlMs", async () => {
    const server = await StashcatServer.start({ seed, clientKeyTtlMs: 300 });
    try {
      const meyer = await StashcatTestUser.login(server, seedUser(MEYER));
      expect((await meyer.call("auth/check"))["success"]).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 400));
      expectRefusal(await meyer.post("auth/check"), "auth_invalid");
    } finally {
      await server.stop();
    }
  });
});

describe("Stashcat test server: raw channel keys", () => {
  it("hands out channel keys as 64 hex characters, conversation keys still wrapped", async () => {
    const server = await StashcatServer.start({ seed, rawChannelKeys: true });
    try {
      const meyer = await StashcatTestUser.login(server, seedUser(MEYER));
      const channels = (await meyer.call("channels/subscripted", { company: "1" }))["channels"] as Json[];
      const key = channels.find((c) => c["id"] === "1001")?.["key"];
      expect(key).toMatch(/^[0-9a-f]{64}$/);
      expect(key).toBe(seed.channels[0]?.key.toString("hex"));
      const conversation = (await meyer.call("message/conversation", { conversation_id: "2001" }))[
        "conversation"
      ] as Json;
      expect(conversation["key"]).not.toMatch(/^[0-9a-f]{64}$/);
      expect(
        unwrapChatKey(conversation["key"] as string, await meyer.privateKey()).equals(
          seed.conversations[0]?.key ?? Buffer.alloc(0),
        ),
      ).toBe(true);
    } finally {
      await server.stop();
    }
  });
});

describe("Stashcat test server: lifecycle", () => {
  it("binds only the given host and frees its ports on stop", async () => {
    const server = await StashcatServer.start({ seed });
    expect(server.apiUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(server.pushUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.pushUrl).not.toBe(server.apiUrl.replace(/\/$/, ""));
    const port = Number(new URL(server.apiUrl).port);
    await server.stop();
    await expect(
      request(`http://127.0.0.1:${String(port)}/auth/check`, { method: "POST" }),
    ).rejects.toThrow();
  });

  it("fails to start on a port in use with FG_SERVER_START_FAILED", async () => {
    const first = await StashcatServer.start({ seed });
    try {
      const port = Number(new URL(first.apiUrl).port);
      await expect(StashcatServer.start({ seed, port })).rejects.toMatchObject({
        code: "FG_SERVER_START_FAILED",
      });
    } finally {
      await first.stop();
    }
  });
});
