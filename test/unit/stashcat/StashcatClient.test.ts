/**
 * StashcatClient against a local server standing in for Stashcat's API: the envelope, what goes out (form
 * fields, client_key and device_id on every call, JSON inside fields), the session (stored key reuse, one
 * login again after auth_invalid) and how each kind of answer maps onto fedgate's errors. What the project's
 * Stashcat-compatible server does with it is in test/integration/stashcat/client.test.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isAuthInvalid, parseEnvelope, StashcatClient } from "../../../bridges/stashcat/StashcatClient.js";
import { PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { rejectionWithout } from "../../helpers/rejection.js";

type Json = Record<string, unknown>;
type Handler = (fields: URLSearchParams, res: ServerResponse, url: URL) => void;

const password = "Pa55wort-geheim";
const deviceId = "0123456789abcdef0123456789abcdef";

interface Seen {
  path: string;
  query: string;
  contentType: string | undefined;
  fields: URLSearchParams;
  raw: Buffer;
}

const handlers = new Map<string, Handler>();
const seen: Seen[] = [];
const logs: string[] = [];
let server: Server;
let apiUrl: string;
let keys = 0;
/** The client_keys the stand-in accepts. */
const validKeys = new Set<string>();

function send(res: ServerResponse, body: unknown, status = 200, contentType = "application/json"): void {
  res.writeHead(status, { "content-type": contentType });
  res.end(typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body));
}

function ok(payload: unknown): Json {
  return { status: { value: "OK", short_message: false, message: false }, payload, signature: "" };
}

function error(shortMessage: string, message = ""): Json {
  return { status: { value: "ERROR", short_message: shortMessage, message }, payload: {}, signature: "" };
}

/** A handler that answers only a valid client_key, with auth_invalid otherwise. */
function authed(payload: (fields: URLSearchParams) => unknown): Handler {
  return (fields, res) => {
    if (!validKeys.has(fields.get("client_key") ?? ""))
      send(res, error("auth_invalid", "client_key invalid"));
    else send(res, ok(payload(fields)));
  };
}

/** The parts of a multipart/form-data body: enough of RFC 7578 for what undici's FormData writes. */
function multipartParts(
  raw: Buffer,
  contentType: string,
): { name: string; filename?: string; contentType?: string; body: Buffer }[] {
  const boundary = /boundary=(.+)$/.exec(contentType)?.[1];
  if (boundary === undefined) throw new Error("no boundary");
  const text = raw.toString("latin1");
  return text
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((chunk) => {
      const [head = "", ...rest] = chunk.replace(/^\r\n/, "").split("\r\n\r\n");
      const body = Buffer.from(rest.join("\r\n\r\n").replace(/\r\n$/, ""), "latin1");
      const name = /name="([^"]*)"/.exec(head)?.[1] ?? "";
      const filename = /filename="([^"]*)"/.exec(head)?.[1];
      const type = /content-type: *([^\r\n]+)/i.exec(head)?.[1];
      return {
        name,
        body,
        ...(filename === undefined ? {} : { filename }),
        ...(type === undefined ? {} : { contentType: type }),
      };
    });
}

function logins(): number {
  return seen.filter((request) => request.path === "auth/login").length;
}

function standardHandlers(): void {
  handlers.set("auth/login", (fields, res) => {
    if (fields.get("password") !== password) {
      send(res, error("login_failed", "Login fehlgeschlagen"));
      return;
    }
    const key = `key-${String(++keys)}-7f3a9c`;
    validKeys.add(key);
    send(
      res,
      ok({
        client_key: key,
        userinfo: { id: "4700", first_name: "Dienst", last_name: "Konto", socket_id: "sock-4700" },
      }),
    );
  });
  handlers.set("auth/check", (fields, res) => {
    send(res, ok({ success: validKeys.has(fields.get("client_key") ?? "") }));
  });
  handlers.set(
    "users/me",
    authed(() => ({ user: { id: 4700, socket_id: "sock-4700" } })),
  );
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://stand-in");
      const path = url.pathname.replace(/^\/api\//, "");
      const raw = Buffer.concat(chunks);
      const fields = new URLSearchParams(raw.toString("utf8"));
      seen.push({ path, query: url.search, contentType: req.headers["content-type"], fields, raw });
      const handler = handlers.get(path);
      if (handler === undefined) send(res, error("unknown_endpoint"));
      else handler(fields, res, url);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  apiUrl = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/api`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  handlers.clear();
  standardHandlers();
  seen.length = 0;
  logs.length = 0;
  validKeys.clear();
});

function connect(
  options: { store?: string[]; requestTimeoutMs?: number; pw?: string } = {},
): Promise<StashcatClient> {
  const store = options.store;
  return StashcatClient.connect({
    apiUrl,
    email: "dienst@example.org",
    password: options.pw ?? password,
    deviceId,
    appName: "fedgate-test",
    log: createLogger("debug", "test", { write: (line: string) => logs.push(line) }),
    requestTimeoutMs: options.requestTimeoutMs ?? 2000,
    ...(store === undefined
      ? {}
      : {
          sessionStore: {
            load: () => Promise.resolve(store[store.length - 1]),
            save: (key: string) => {
              store.push(key);
              return Promise.resolve();
            },
          },
        }),
  });
}

describe("parseEnvelope", () => {
  it("returns the payload of an OK answer, with short_message false or a string", () => {
    expect(parseEnvelope("x/y", JSON.stringify(ok({ a: 1 })))).toEqual({ a: 1 });
    expect(
      parseEnvelope(
        "x/y",
        JSON.stringify({ status: { value: "OK", short_message: "", message: "" }, payload: { b: 2 } }),
      ),
    ).toEqual({ b: 2 });
  });

  it("takes an empty or absent payload as an empty object", () => {
    expect(parseEnvelope("x/y", JSON.stringify({ status: { value: "OK" }, payload: [] }))).toEqual({});
    expect(parseEnvelope("x/y", JSON.stringify({ status: { value: "OK" } }))).toEqual({});
  });

  it.each([
    ["not JSON", "<html>Bad Gateway</html>", "the answer is not JSON"],
    ["not an object", "[1,2]", "the answer is not a JSON object"],
    ["without a status", JSON.stringify({ payload: {} }), "the answer has no status"],
    [
      "with a status that is a string",
      JSON.stringify({ status: "OK", payload: {} }),
      "the answer has no status",
    ],
    ["without a status value", JSON.stringify({ status: { short_message: "x" } }), "the status has no value"],
  ])("refuses an answer %s as FG_NATIVE_INVALID", (_what, body, reason) => {
    let thrown: unknown;
    try {
      parseEnvelope("message/send", body);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PermanentError);
    expect((thrown as PermanentError).code).toBe("FG_NATIVE_INVALID");
    expect((thrown as PermanentError).detail).toEqual({ endpoint: "message/send", reason });
  });

  it("turns a status other than OK into FG_PEER_REFUSED with its short_message", () => {
    let thrown: unknown;
    try {
      parseEnvelope("message/send", JSON.stringify(error("no_permission", "Keine Berechtigung")));
    } catch (caught) {
      thrown = caught;
    }
    expect(thrown).toBeInstanceOf(PermanentError);
    const refusal = thrown as PermanentError;
    expect(refusal.code).toBe("FG_PEER_REFUSED");
    expect(refusal.detail).toEqual({ endpoint: "message/send", shortMessage: "no_permission" });
    expect(refusal.message).toContain("Keine Berechtigung");
    expect(isAuthInvalid(refusal)).toBe(false);
  });

  it("recognises auth_invalid", () => {
    try {
      parseEnvelope("users/me", JSON.stringify(error("auth_invalid")));
    } catch (caught) {
      expect(isAuthInvalid(caught)).toBe(true);
      return;
    }
    throw new Error("not refused");
  });

  it("copes with a refusal whose short_message is false", () => {
    try {
      parseEnvelope(
        "users/me",
        JSON.stringify({ status: { value: "ERROR", short_message: false, message: false } }),
      );
    } catch (caught) {
      expect((caught as PermanentError).detail).toEqual({ endpoint: "users/me", shortMessage: "" });
      return;
    }
    throw new Error("not refused");
  });
});

describe("StashcatClient", () => {
  it("logs in with a form-encoded POST and encrypted=true, then sends client_key and device_id on every call", async () => {
    handlers.set(
      "message/send",
      authed((fields) => ({
        message: {
          id: 9001,
          channel_id: fields.get("channel_id"),
          conversation_id: 0,
          text: fields.get("text"),
          iv: fields.get("iv"),
          encrypted: true,
          time: 1767225600,
          kind: "message",
          sender: { id: 4700 },
          reply_to: { message_id: Number(fields.get("reply_to")) },
        },
      })),
    );
    const client = await connect();
    expect(client.userId).toBe(4700);
    expect(client.socketId).toBe("sock-4700");
    const login = seen[0];
    expect(login?.path).toBe("auth/login");
    expect(login?.contentType).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(login?.fields ?? [])).toMatchObject({
      email: "dienst@example.org",
      password,
      device_id: deviceId,
      app_name: "fedgate-test",
      encrypted: "true",
    });

    const sent = await client.send(
      { type: "channel", id: 1001 },
      { text: "abcdef", iv: "00ff", encrypted: true, fileIds: [77, 78], replyTo: 8999, markdown: true },
    );
    expect(sent).toMatchObject({
      id: 9001,
      chat: { type: "channel", id: 1001 },
      replyTo: 8999,
      encrypted: true,
    });
    const call = seen.at(-1);
    expect(call?.contentType).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(call?.fields ?? [])).toEqual({
      target: "channel",
      channel_id: "1001",
      text: "abcdef",
      iv: "00ff",
      encrypted: "true",
      verification: "",
      files: "[77,78]",
      url: "[]",
      type: "text",
      is_forwarded: "false",
      metainfo: '{"v":1,"style":"md"}',
      reply_to: "8999",
      client_key: client.clientKey,
      device_id: deviceId,
    });
    for (const line of logs) {
      expect(line).not.toContain(password);
      expect(line).not.toContain(client.clientKey);
      expect(line).not.toContain("abcdef");
    }
  });

  it("reuses a stored client_key the server still accepts, and logs in when it does not", async () => {
    const store: string[] = [];
    const first = await connect({ store });
    expect(store).toEqual([first.clientKey]);
    expect(logins()).toBe(1);

    const second = await connect({ store });
    expect(second.clientKey).toBe(first.clientKey);
    expect(second.socketId).toBe("sock-4700");
    expect(logins()).toBe(1);
    expect(seen.map((request) => request.path).slice(-2)).toEqual(["auth/check", "users/me"]);

    validKeys.clear();
    const third = await connect({ store });
    expect(logins()).toBe(2);
    expect(third.clientKey).not.toBe(first.clientKey);
    expect(store).toEqual([first.clientKey, third.clientKey]);
  });

  it("does not log in afresh when the server is out of reach during the check", async () => {
    const store = ["key-stored"];
    handlers.set("auth/check", (_fields, res) => send(res, "", 503, "text/plain"));
    const error = await rejectionWithout(connect({ store }), "key-stored");
    expect(error).toBeInstanceOf(TransientError);
    expect(logins()).toBe(0);
  });

  it("logs in again once after auth_invalid and repeats the call", async () => {
    handlers.set(
      "message/delete",
      authed(() => ({})),
    );
    const store: string[] = [];
    const client = await connect({ store });
    const before = client.clientKey;
    validKeys.clear();
    await client.deleteMessage(9001);
    expect(logins()).toBe(2);
    expect(client.clientKey).not.toBe(before);
    expect(store).toEqual([before, client.clientKey]);
    const deletes = seen.filter((request) => request.path === "message/delete");
    expect(deletes.map((request) => request.fields.get("client_key"))).toEqual([before, client.clientKey]);
    expect(deletes[1]?.fields.get("message_id")).toBe("9001");
  });

  it("shares one login among calls that meet auth_invalid together", async () => {
    handlers.set(
      "message/like",
      authed(() => ({})),
    );
    const client = await connect();
    validKeys.clear();
    await Promise.all([client.like(1), client.like(2), client.like(3)]);
    expect(logins()).toBe(2);
  });

  it("gives up after a second auth_invalid", async () => {
    handlers.set("message/unlike", (_fields, res) => send(res, error("auth_invalid")));
    const client = await connect();
    const refusal = await rejectionWithout(client.unlike(1), password, client.clientKey);
    expect(refusal.code).toBe("FG_PEER_REFUSED");
    expect(refusal.detail).toEqual({ endpoint: "message/unlike", shortMessage: "auth_invalid" });
    expect(logins()).toBe(2);
  });

  it("refuses a wrong password with FG_PEER_REFUSED", async () => {
    const refusal = await rejectionWithout(connect({ pw: "falsch" }), "falsch");
    expect(refusal.code).toBe("FG_PEER_REFUSED");
    expect(refusal.detail["shortMessage"]).toBe("login_failed");
  });

  it("maps 5xx, timeouts and refused connections to FG_PEER_UNAVAILABLE", async () => {
    const client = await connect({ requestTimeoutMs: 300 });
    handlers.set("message/like", (_fields, res) => send(res, "Bad Gateway", 502, "text/html"));
    let failure = await rejectionWithout(client.like(1), client.clientKey);
    expect(failure).toBeInstanceOf(TransientError);
    expect(failure.code).toBe("FG_PEER_UNAVAILABLE");
    expect(failure.detail).toEqual({ endpoint: "message/like", status: 502 });

    handlers.set("message/like", () => undefined);
    failure = await rejectionWithout(client.like(1), client.clientKey);
    expect(failure).toBeInstanceOf(TransientError);
    expect(failure.message).toContain("no answer within 300 ms");

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    failure = await rejectionWithout(
      StashcatClient.connect({
        apiUrl: `http://127.0.0.1:${String(port)}/`,
        email: "dienst@example.org",
        password,
        deviceId,
        appName: "fedgate-test",
        log: createLogger("silent"),
      }),
      password,
    );
    expect(failure).toBeInstanceOf(TransientError);
    expect(failure.message).toContain("ECONNREFUSED");
  });

  it("refuses a broken envelope with FG_NATIVE_INVALID, and a page that is no API with FG_PEER_REFUSED", async () => {
    const client = await connect();
    handlers.set("message/like", (_fields, res) => send(res, "<html>Wartung</html>", 200, "text/html"));
    let failure = await rejectionWithout(client.like(1));
    expect(failure).toBeInstanceOf(PermanentError);
    expect(failure.code).toBe("FG_NATIVE_INVALID");
    expect(failure.detail).toEqual({ endpoint: "message/like", reason: "the answer is not JSON" });

    handlers.set("message/like", (_fields, res) => send(res, "Not Found", 404, "text/plain"));
    failure = await rejectionWithout(client.like(1));
    expect(failure.code).toBe("FG_PEER_REFUSED");
    expect(failure.detail).toEqual({ endpoint: "message/like", status: 404 });
  });

  it("asks for the private key in the JWK form first, and takes the legacy PEM form where there is no JWK", async () => {
    const jwk = JSON.stringify({ ciphertext: "Y2lwaGVy", iv: "aXY=", key_derivation_properties: {} });
    const pem = JSON.stringify({ private: "-----BEGIN ENCRYPTED PRIVATE KEY-----\n…" });
    let hasJwk = true;
    handlers.set("security/get_private_key", (fields, res) => {
      if (!validKeys.has(fields.get("client_key") ?? "")) send(res, error("auth_invalid"));
      else if (fields.get("format") !== "jwk") send(res, ok({ keys: { user_id: "4700", private_key: pem } }));
      else if (hasJwk) send(res, ok({ keys: { user_id: "4700", private_key: jwk, format: "jwk" } }));
      else send(res, error("not_found", "no key in this format"));
    });
    const client = await connect();
    expect(await client.lockedPrivateKey()).toBe(jwk);
    const asked = seen.filter((request) => request.path === "security/get_private_key");
    expect(asked.map((request) => [request.fields.get("format"), request.fields.get("type")])).toEqual([
      ["jwk", "encryption"],
    ]);
    hasJwk = false;
    expect(await client.lockedPrivateKey()).toBe(pem);
    // A server that ignores format hands out what it has, which unlockPrivateKey reads either way.
    handlers.set(
      "security/get_private_key",
      authed(() => ({ keys: { user_id: "4700", private_key: pem } })),
    );
    expect(await client.lockedPrivateKey()).toBe(pem);
  });

  it("reads channel lists with string ids and channels/info's plural key", async () => {
    const rawKey = "ab".repeat(32);
    handlers.set(
      "channels/subscripted",
      authed(() => ({
        channels: [
          { id: "1001", name: "Einsatz", encrypted: true, key: "d3JhcHBlZA==" },
          { id: "1003", name: "Offen", encrypted: "0", key: null },
        ],
      })),
    );
    handlers.set(
      "channels/info",
      authed(() => ({ channels: { id: 1001, name: "Einsatz", encrypted: true, key: rawKey } })),
    );
    handlers.set(
      "message/conversation",
      authed(() => ({
        conversation: { id: 2001, key: "Y29udg==", members: [{ id: "4711" }, { id: 4712 }] },
      })),
    );
    const client = await connect();
    expect(await client.channels(1)).toEqual([
      { id: 1001, name: "Einsatz", encrypted: true, key: "d3JhcHBlZA==" },
      { id: 1003, name: "Offen", encrypted: false },
    ]);
    expect(seen.at(-1)?.fields.get("company")).toBe("1");
    expect(await client.chatKeyField({ type: "channel", id: 1001 })).toBe(rawKey);
    expect(Object.fromEntries(seen.at(-1)?.fields ?? [])).toMatchObject({
      channel_id: "1001",
      without_members: "true",
    });
    expect(await client.chatKeyField({ type: "conversation", id: 2001 })).toBe("Y29udg==");
    expect(await client.conversationMembers(2001)).toEqual([4711, 4712]);
  });

  it("returns only chat messages, oldest first, skipping broken ones", async () => {
    handlers.set(
      "message/content",
      authed(() => ({
        messages: [
          { id: 12, kind: "message", time: "1767225620", sender: { id: 4711 }, text: "b", channel_id: 1001 },
          { id: 11, kind: "message", time: 1767225610, sender: { id: 4712 }, text: "a", channel_id: "1001" },
          { id: 10, kind: "joined", time: 1767225600 },
          { kind: "message", time: 1767225600, text: "no id" },
          { id: 13, kind: "message", time: "kaputt", sender: { id: 4711 }, text: "vertraulich" },
        ],
      })),
    );
    const client = await connect();
    const messages = await client.messages({ type: "channel", id: 1001 }, { limit: 30, afterMessageId: 9 });
    expect(messages.map((message) => message.id)).toEqual([11, 12]);
    expect(Object.fromEntries(seen.at(-1)?.fields ?? [])).toMatchObject({
      source: "channel",
      channel_id: "1001",
      limit: "30",
      offset: "0",
      after_message_id: "9",
    });
    const warning = logs.find((line) => line.includes("Stashcat message skipped"));
    expect(warning).toBeDefined();
    expect(warning).not.toContain("vertraulich");
  });

  it("downloads raw bytes, and tells a refusal in an envelope from the file", async () => {
    const bytes = Buffer.from([0x7b, 0x00, 0xff, 0x10]);
    handlers.set("file/download", (fields, res, url) => {
      if (!validKeys.has(fields.get("client_key") ?? "")) send(res, error("auth_invalid"), 200, "text/html");
      else if (url.searchParams.get("id") === "77") send(res, bytes, 200, "application/octet-stream");
      else send(res, error("not_found", "Datei nicht gefunden"));
    });
    const client = await connect();
    expect(await client.download(77, 1024)).toEqual(bytes);
    expect(seen.at(-1)?.query).toBe("?id=77");

    validKeys.clear();
    expect(await client.download(77, 1024)).toEqual(bytes);
    expect(logins()).toBe(2);

    const missing = await rejectionWithout(client.download(78, 1024));
    expect(missing.code).toBe("FG_PEER_REFUSED");
    expect(missing.detail["shortMessage"]).toBe("not_found");

    const large = await rejectionWithout(client.download(77, 3));
    expect(large.code).toBe("FG_ATTACHMENT_INVALID");
  });

  it("uploads resumable.js chunks as multipart with the file part named file", async () => {
    const requests: Seen[] = [];
    handlers.set("file/upload", (_fields, res) => {
      const last = seen.at(-1);
      if (last !== undefined) requests.push(last);
      send(res, ok({ file: { id: "501", name: "lage.pdf" } }));
    });
    const client = await connect();
    const id = await client.uploadFile(
      { type: "conversation", id: 2001 },
      { name: "lage.pdf", mediaType: "application/pdf", data: Buffer.from("ciphertext"), iv: "00ff" },
    );
    expect(id).toBe(501);
    expect(requests).toHaveLength(1);
    const [request] = requests;
    if (request === undefined) throw new Error("no upload");
    expect(request.contentType).toMatch(/^multipart\/form-data; boundary=/);
    const parts = multipartParts(request.raw, request.contentType ?? "");
    const fields = Object.fromEntries(
      parts.filter((part) => part.filename === undefined).map((part) => [part.name, part.body.toString()]),
    );
    expect(fields).toEqual({
      resumableChunkNumber: "1",
      resumableChunkSize: String(5 * 1024 * 1024),
      resumableCurrentChunkSize: "10",
      resumableTotalSize: "10",
      resumableType: "application/pdf",
      resumableIdentifier: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      resumableFilename: "lage.pdf",
      resumableRelativePath: "lage.pdf",
      resumableTotalChunks: "1",
      folder: "0",
      type: "conversation",
      type_id: "2001",
      encrypted: "true",
      iv: "00ff",
      client_key: client.clientKey,
      device_id: deviceId,
    });
    const file = parts.find((part) => part.name === "file");
    expect(file?.filename).toBe("[object Object]");
    expect(file?.contentType).toBe("application/octet-stream");
    expect(file?.body.toString()).toBe("ciphertext");
  });
});
