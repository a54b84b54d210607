/**
 * StashcatClient and StashcatPush against the project's Stashcat-compatible server: the session kept
 * across restarts and renewed once after it expired, end-to-end encrypted messages and files with
 * crypto.ts (Meyer writes, Schulz reads, each unlocking a private key of a different form), a conversation
 * created with wrapped keys, the push channel through a dropped connection and an expired session, and a
 * server answering something that is not the envelope.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes, type KeyObject } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decryptBytes,
  decryptText,
  encryptBytes,
  encryptText,
  newKey,
  unlockPrivateKey,
  unwrapChatKey,
  wrapChatKey,
} from "../../../bridges/stashcat/crypto.js";
import { StashcatServer, type SeedUser } from "../../harness/servers/stashcat/StashcatServer.js";
import {
  parseMessage,
  StashcatClient,
  type ChatRef,
  type StashcatClientOptions,
  type StashcatMessage,
} from "../../../bridges/stashcat/StashcatClient.js";
import { StashcatPush } from "../../../bridges/stashcat/StashcatPush.js";
import { PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually } from "../../helpers/fixtures.js";
import { rejectionWithout } from "../../helpers/rejection.js";

const einsatz: ChatRef = { type: "channel", id: 1001 };
const meyerSchulz: ChatRef = { type: "conversation", id: 2001 };
const SERVICE_ACCOUNT = 4700;
const MEYER = 4711;
const SCHULZ = 4712;

/** Every log line of every client here: none may show a password, a client_key or plaintext. */
const logs: string[] = [];
const log = createLogger("debug", "stashcat-client-test", { write: (line: string) => logs.push(line) });
/** Plaintexts sent in this file, checked against the logs at the end. */
const plaintexts: string[] = [];
const clientKeys = new Set<string>();
/** The device each client logged in on: its push connection must name the same one. */
const devices = new Map<StashcatClient, string>();

let server: StashcatServer;
const pushes: StashcatPush[] = [];

beforeAll(async () => {
  server = await StashcatServer.start();
});

afterAll(async () => {
  for (const push of pushes) await push.stop();
  await server.stop();
});

function user(id: number): SeedUser {
  const found = server.seed.users.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no seed user ${String(id)}`);
  return found;
}

/** A session store in memory that counts its saves: one per login. */
function memoryStore(): { saved: string[]; store: NonNullable<StashcatClientOptions["sessionStore"]> } {
  const saved: string[] = [];
  return {
    saved,
    store: {
      load: () => Promise.resolve(saved.at(-1)),
      save: (clientKey) => {
        saved.push(clientKey);
        return Promise.resolve();
      },
    },
  };
}

async function connect(
  id: number,
  extra: Partial<StashcatClientOptions> = {},
  target: StashcatServer = server,
): Promise<StashcatClient> {
  const account = user(id);
  const deviceId = extra.deviceId ?? `device${String(id)}${randomBytes(8).toString("hex")}`;
  const client = await StashcatClient.connect({
    apiUrl: target.apiUrl,
    email: account.email,
    password: account.password,
    appName: "fedgate-test",
    log,
    ...extra,
    deviceId,
  });
  clientKeys.add(client.clientKey);
  devices.set(client, deviceId);
  return client;
}

/** The account's private key, fetched and unlocked as the bridge does. */
async function privateKeyOf(client: StashcatClient, id: number): Promise<KeyObject> {
  return unlockPrivateKey(await client.lockedPrivateKey(), user(id).encryptionPassword);
}

async function chatKeyOf(client: StashcatClient, privateKey: KeyObject, chat: ChatRef): Promise<Buffer> {
  const wrapped = await client.chatKeyField(chat);
  if (wrapped === undefined) throw new Error("no key for the chat");
  return unwrapChatKey(wrapped, privateKey);
}

async function sendEncrypted(
  client: StashcatClient,
  chatKey: Buffer,
  chat: ChatRef,
  text: string,
  extra: { replyTo?: number; fileIds?: number[]; markdown?: boolean } = {},
): Promise<StashcatMessage> {
  plaintexts.push(text);
  return client.send(chat, { ...encryptText(text, chatKey), encrypted: true, ...extra });
}

describe("the session", () => {
  it("logs in once and reuses the stored client_key after a restart", async () => {
    const { saved, store } = memoryStore();
    const deviceId = `device-restart-${randomBytes(6).toString("hex")}`;
    const before = await connect(MEYER, { sessionStore: store, deviceId });
    expect(before.userId).toBe(MEYER);
    expect(before.socketId).not.toBe("");
    expect(saved).toEqual([before.clientKey]);

    const after = await connect(MEYER, { sessionStore: store, deviceId });
    // No second login: the same session, nothing new to save, and it works.
    expect(after.clientKey).toBe(before.clientKey);
    expect(after.socketId).toBe(before.socketId);
    expect(after.userId).toBe(MEYER);
    expect(saved).toEqual([before.clientKey]);
    expect((await after.companies()).map((company) => company.id)).toEqual([1]);
  });

  it("logs in afresh when the stored client_key is no longer accepted", async () => {
    const { saved, store } = memoryStore();
    const deviceId = `device-stale-${randomBytes(6).toString("hex")}`;
    const before = await connect(MEYER, { sessionStore: store, deviceId });
    server.expireClientKeys();
    const after = await connect(MEYER, { sessionStore: store, deviceId });
    expect(after.clientKey).not.toBe(before.clientKey);
    expect(saved).toEqual([before.clientKey, after.clientKey]);
    expect(await after.userInfo(MEYER)).toMatchObject({ id: MEYER });
  });

  it("logs in exactly once more after the server expired the session, and repeats the call", async () => {
    const { saved, store } = memoryStore();
    const client = await connect(MEYER, { sessionStore: store });
    const before = client.clientKey;
    let renewals = 0;
    client.onSessionRenewed(() => renewals++);
    server.expireClientKeys();

    const [companies, channels] = await Promise.all([client.companies(), client.channels(1)]);
    clientKeys.add(client.clientKey);
    expect(companies).toEqual([{ id: 1, name: "Polizei Niedersachsen" }]);
    expect(channels.map((channel) => channel.id)).toContain(1001);
    expect(client.clientKey).not.toBe(before);
    expect(saved).toEqual([before, client.clientKey]);
    expect(renewals).toBe(1);

    // checkSession has nothing to renew now.
    await client.checkSession();
    expect(saved).toHaveLength(2);
  });

  it("refuses a wrong password with FG_PEER_REFUSED", async () => {
    const error = await rejectionWithout(
      StashcatClient.connect({
        apiUrl: server.apiUrl,
        email: user(MEYER).email,
        password: "falsches-passwort",
        deviceId: "device-wrong",
        appName: "fedgate-test",
        log,
      }),
      "falsches-passwort",
    );
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.code).toBe("FG_PEER_REFUSED");
    expect(error.detail).toEqual({ endpoint: "auth/login", shortMessage: "login_failed" });
  });
});

describe("encrypted messages", () => {
  it("carries a channel message from Meyer to Schulz, each opening their own key form", async () => {
    const meyer = await connect(MEYER);
    const schulz = await connect(SCHULZ);
    const meyerKey = await chatKeyOf(meyer, await privateKeyOf(meyer, MEYER), einsatz);
    const schulzKey = await chatKeyOf(schulz, await privateKeyOf(schulz, SCHULZ), einsatz);
    expect(meyerKey.equals(schulzKey)).toBe(true);

    const first = await sendEncrypted(meyer, meyerKey, einsatz, "Lage: Einsatz am Hauptbahnhof", {
      markdown: true,
    });
    expect(first).toMatchObject({
      chat: einsatz,
      kind: "message",
      senderId: MEYER,
      encrypted: true,
      markdown: true,
      deleted: false,
      fileIds: [],
    });
    expect(first.text).toMatch(/^[0-9a-f]+$/);
    expect(typeof first.time).toBe("number");
    const reply = await sendEncrypted(schulz, schulzKey, einsatz, "Verstanden, bin unterwegs", {
      replyTo: first.id,
    });
    expect(reply.replyTo).toBe(first.id);

    const page = await schulz.messages(einsatz, { limit: 30 });
    const ids = page.map((message) => message.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const read = page.find((message) => message.id === first.id);
    if (read?.iv === undefined) throw new Error("Meyer's message is not in Schulz's page");
    expect(read.senderName).toContain("Meyer");
    expect(decryptText(read.text, read.iv, schulzKey)).toBe("Lage: Einsatz am Hauptbahnhof");

    const after = await meyer.messages(einsatz, { limit: 30, afterMessageId: first.id });
    expect(after.map((message) => message.id)).toEqual([reply.id]);
    const answer = after[0];
    if (answer?.iv === undefined) throw new Error("no reply");
    expect(answer.replyTo).toBe(first.id);
    expect(decryptText(answer.text, answer.iv, meyerKey)).toBe("Verstanden, bin unterwegs");

    await schulz.like(first.id);
    expect((await meyer.messages(einsatz, { limit: 30 })).find((m) => m.id === first.id)?.likes).toBe(1);
    await schulz.unlike(first.id);
    expect((await meyer.messages(einsatz, { limit: 30 })).find((m) => m.id === first.id)?.likes).toBe(0);

    await schulz.deleteMessage(reply.id);
    const remaining = await meyer.messages(einsatz, { limit: 30, afterMessageId: first.id });
    expect(remaining.every((message) => message.id !== reply.id || message.deleted)).toBe(true);
  });

  it("reads a conversation the same way", async () => {
    const meyer = await connect(MEYER);
    const schulz = await connect(SCHULZ);
    const key = await chatKeyOf(meyer, await privateKeyOf(meyer, MEYER), meyerSchulz);
    const sent = await sendEncrypted(meyer, key, meyerSchulz, "Treffpunkt 14 Uhr Wache Mitte");
    expect(sent.chat).toEqual(meyerSchulz);
    expect((await schulz.conversationMembers(2001)).sort()).toEqual([MEYER, SCHULZ]);
    const schulzKey = await chatKeyOf(schulz, await privateKeyOf(schulz, SCHULZ), meyerSchulz);
    const [latest] = (await schulz.messages(meyerSchulz, { limit: 1 })).slice(-1);
    if (latest?.iv === undefined) throw new Error("no message");
    expect(latest.id).toBe(sent.id);
    expect(decryptText(latest.text, latest.iv, schulzKey)).toBe("Treffpunkt 14 Uhr Wache Mitte");
  });

  it("takes channel keys handed out raw as 64 hex characters", async () => {
    const raw = await StashcatServer.start({ rawChannelKeys: true, seed: server.seed });
    try {
      const meyer = await connect(MEYER, {}, raw);
      const field = await meyer.chatKeyField(einsatz);
      expect(field).toMatch(/^[0-9a-f]{64}$/i);
      const channel = (await meyer.channels(1)).find((candidate) => candidate.id === 1001);
      expect(channel?.key).toBe(field);
      expect(channel?.encrypted).toBe(true);
      const key = await chatKeyOf(meyer, await privateKeyOf(meyer, MEYER), einsatz);
      const seedKey = raw.seed.channels.find((candidate) => candidate.id === 1001)?.key;
      expect(seedKey !== undefined && key.equals(seedKey)).toBe(true);
    } finally {
      await raw.stop();
    }
  });

  it("creates an encrypted conversation with the key wrapped for each member", async () => {
    const meyer = await connect(MEYER);
    const bridge = await connect(SERVICE_ACCOUNT);
    const chatKey = newKey();
    const members = await Promise.all(
      [MEYER, SERVICE_ACCOUNT].map(async (id) => {
        const info = await meyer.userInfo(id);
        if (info.publicKey === undefined) throw new Error("no public key");
        return { id, key: wrapChatKey(chatKey, info.publicKey) };
      }),
    );
    const { id } = await meyer.createEncryptedConversation(members);
    const conversation: ChatRef = { type: "conversation", id };
    expect((await bridge.conversationMembers(id)).sort()).toEqual([SERVICE_ACCOUNT, MEYER]);
    const bridgeKey = await chatKeyOf(bridge, await privateKeyOf(bridge, SERVICE_ACCOUNT), conversation);
    expect(bridgeKey.equals(chatKey)).toBe(true);
    const sent = await sendEncrypted(meyer, chatKey, conversation, "Direkt an die Brücke");
    const [read] = await bridge.messages(conversation, { limit: 10 });
    if (read?.iv === undefined) throw new Error("no message");
    expect(read.id).toBe(sent.id);
    expect(decryptText(read.text, read.iv, bridgeKey)).toBe("Direkt an die Brücke");
    expect(await meyer.userInfo(SCHULZ)).toMatchObject({ id: SCHULZ, lastName: "Schulz" });
  });
});

describe("files", () => {
  it.each([
    ["a small file", 2000],
    ["a file of two chunks", 5 * 1024 * 1024 + 1234],
  ])(
    "uploads %s encrypted, gives the chat its key, and Schulz downloads and opens it",
    async (_what, size) => {
      const meyer = await connect(MEYER);
      const schulz = await connect(SCHULZ);
      const chatKey = await chatKeyOf(meyer, await privateKeyOf(meyer, MEYER), meyerSchulz);
      const plain = randomBytes(size);
      const fileKey = newKey();
      const body = encryptBytes(plain, fileKey);
      const fileId = await meyer.uploadFile(meyerSchulz, {
        name: "lagebild.png",
        mediaType: "image/png",
        data: body.data,
        iv: body.iv.toString("hex"),
      });
      const locked = encryptBytes(fileKey, chatKey);
      await meyer.setFileAccessKey(
        fileId,
        meyerSchulz,
        locked.data.toString("hex"),
        locked.iv.toString("hex"),
      );
      const sent = await sendEncrypted(meyer, chatKey, meyerSchulz, "Lagebild anbei", { fileIds: [fileId] });
      expect(sent.fileIds).toEqual([fileId]);

      const [message] = await schulz.messages(meyerSchulz, { limit: 30, afterMessageId: sent.id - 1 });
      expect(message?.fileIds).toEqual([fileId]);
      const info = await schulz.fileInfo(fileId);
      expect(info).toMatchObject({
        id: fileId,
        name: "lagebild.png",
        size: body.data.length,
        mediaType: "image/png",
        encrypted: true,
        iv: body.iv.toString("hex"),
      });
      const entry = info.keys.find((key) => key.chatType === "conversation" && key.chatId === 2001);
      if (entry === undefined) throw new Error("no key for the conversation");
      const schulzChatKey =
        entry.chatKey === undefined
          ? await chatKeyOf(schulz, await privateKeyOf(schulz, SCHULZ), meyerSchulz)
          : unwrapChatKey(entry.chatKey, await privateKeyOf(schulz, SCHULZ));
      const openedKey = decryptBytes(
        Buffer.from(entry.key, "hex"),
        schulzChatKey,
        Buffer.from(entry.iv, "hex"),
      );
      const data = await schulz.download(fileId, size + 64);
      expect(data.length).toBe(body.data.length);
      expect(decryptBytes(data, openedKey, Buffer.from(info.iv ?? "", "hex")).equals(plain)).toBe(true);

      const tooLarge = await rejectionWithout(schulz.download(fileId, 100));
      expect(tooLarge.code).toBe("FG_ATTACHMENT_INVALID");
    },
  );

  it("refuses to download a file that does not exist with FG_PEER_REFUSED", async () => {
    const schulz = await connect(SCHULZ);
    const error = await rejectionWithout(schulz.download(999_999, 1024), schulz.clientKey);
    expect(error.code).toBe("FG_PEER_REFUSED");
    expect(error.detail["endpoint"]).toBe("file/download");
  });
});

describe("the push channel", () => {
  /** Meyer's push connection, collecting what it hears. */
  async function listen(
    client: StashcatClient,
  ): Promise<{ messages: StashcatMessage[]; ready: () => number; push: StashcatPush }> {
    const messages: StashcatMessage[] = [];
    let readyCount = 0;
    const push = await StashcatPush.connect({
      pushUrl: server.pushUrl,
      deviceId: devices.get(client) ?? "",
      client,
      log,
      onMessage: (raw) => messages.push(parseMessage(raw)),
      onReady: () => readyCount++,
    });
    pushes.push(push);
    return { messages, ready: () => readyCount, push };
  }

  function heard(messages: StashcatMessage[], id: number): Promise<StashcatMessage> {
    return eventually(() => messages.find((message) => message.id === id), 10_000, `message ${String(id)}`);
  }

  it("hears Schulz's messages, and again after the connection dropped", async () => {
    const meyer = await connect(MEYER);
    const schulz = await connect(SCHULZ);
    const key = await chatKeyOf(schulz, await privateKeyOf(schulz, SCHULZ), einsatz);
    const { messages, ready } = await listen(meyer);
    expect(ready()).toBe(1);

    const first = await sendEncrypted(schulz, key, einsatz, "Funkspruch eins");
    const pushed = await heard(messages, first.id);
    expect(pushed).toMatchObject({ chat: einsatz, senderId: SCHULZ, encrypted: true });
    expect(decryptText(pushed.text, pushed.iv ?? "", key)).toBe("Funkspruch eins");

    server.dropPushConnections();
    await eventually(() => (ready() >= 2 ? true : undefined), 15_000, "onReady after the drop");
    const second = await sendEncrypted(schulz, key, einsatz, "Funkspruch zwei");
    await heard(messages, second.id);
  });

  it("authenticates again with a renewed session after the server expired it", async () => {
    const meyer = await connect(MEYER);
    const schulz = await connect(SCHULZ);
    const key = await chatKeyOf(schulz, await privateKeyOf(schulz, SCHULZ), einsatz);
    const { messages, ready, push } = await listen(meyer);

    server.expireClientKeys();
    // Nobody calls the REST API for Meyer: the heartbeat (the bridge's connection check asks it) notices, the
    // session is renewed, and the socket logs in with the new client_key.
    await eventually(
      async () => {
        await push.heartbeat(1000).catch(() => undefined);
        return ready() >= 2 ? true : undefined;
      },
      15_000,
      "onReady after the expiry",
    );
    clientKeys.add(meyer.clientKey);
    const sent = await sendEncrypted(schulz, key, einsatz, "Funkspruch drei");
    clientKeys.add(schulz.clientKey);
    await heard(messages, sent.id);
  });

  it("fails to connect to a push server that is not there with FG_PEER_UNAVAILABLE", async () => {
    const meyer = await connect(MEYER);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await rejectionWithout(
      StashcatPush.connect({
        pushUrl: `http://127.0.0.1:${String(port)}`,
        deviceId: "push-nowhere",
        client: meyer,
        log,
        onMessage: () => undefined,
        onReady: () => undefined,
        connectTimeoutMs: 500,
      }),
      meyer.clientKey,
    );
    expect(error).toBeInstanceOf(TransientError);
    expect(error.code).toBe("FG_PEER_UNAVAILABLE");
  });
});

describe("a server that does not speak the envelope", () => {
  let garbage: Server;
  let url: string;

  beforeAll(async () => {
    garbage = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(req.url?.includes("auth/login") === true ? '{"status": "OK", "payload": ' : "[]");
      });
    });
    await new Promise<void>((resolve) => garbage.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${String((garbage.address() as AddressInfo).port)}/`;
  });

  afterAll(async () => {
    garbage.closeAllConnections();
    await new Promise((resolve) => garbage.close(resolve));
  });

  it("is refused with FG_NATIVE_INVALID", async () => {
    const error = await rejectionWithout(
      StashcatClient.connect({
        apiUrl: url,
        email: "meyer@polizei.niedersachsen.de",
        password: "geheim-und-lang",
        deviceId: "device-garbage",
        appName: "fedgate-test",
        log,
      }),
      "geheim-und-lang",
    );
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.code).toBe("FG_NATIVE_INVALID");
    expect(error.detail).toEqual({ endpoint: "auth/login", reason: "the answer is not JSON" });
  });
});

describe("the logs", () => {
  it("show no password, client_key or plaintext", () => {
    expect(logs.length).toBeGreaterThan(0);
    const all = logs.join("\n");
    for (const account of server.seed.users) {
      expect(all).not.toContain(account.password);
      expect(all).not.toContain(account.encryptionPassword);
    }
    for (const key of clientKeys) expect(all).not.toContain(key);
    for (const text of plaintexts) expect(all).not.toContain(text);
  });
});
