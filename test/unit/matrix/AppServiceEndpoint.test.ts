import type { HttpListener } from "../../../gateway/platform/http/HttpListener.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { request } from "undici";
import {
  listenAppService,
  type AppServiceEndpointOptions,
} from "../../../bridges/matrix/AppServiceEndpoint.js";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { createLogger } from "../../../gateway/platform/log.js";

const hsToken = "hs-token-9c1f2e7a4b";
const wrongToken = "hs-token-wrong";

interface Call {
  status: number;
  body: Record<string, unknown>;
}

interface Harness {
  server: HttpListener;
  kv: MemoryKeyValue;
  logs: string[];
  /** Every transaction the handler ran, with its events. */
  handled: { txnId: string; events: readonly unknown[] }[];
  onEvents: AppServiceEndpointOptions["onEvents"];
}

let h: Harness;

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function start(overrides: Partial<AppServiceEndpointOptions> = {}): Promise<Harness> {
  const logs: string[] = [];
  const log = createLogger("debug", "test", { write: (line: string) => logs.push(line) });
  const kv = new MemoryKeyValue();
  const harness: Harness = {
    kv,
    logs,
    handled: [],
    onEvents: (events, txnId) => {
      harness.handled.push({ txnId, events });
      return Promise.resolve();
    },
    server: undefined as unknown as HttpListener,
  };
  harness.server = await listenAppService(
    {
      hsToken,
      txns: kv,
      onEvents: (events, txnId) => harness.onEvents(events, txnId),
      log,
      ...overrides,
    },
    "127.0.0.1",
    0,
  );
  return harness;
}

async function call(
  method: "GET" | "PUT" | "POST",
  path: string,
  options: { auth?: "header" | "query" | "none" | "wrong"; body?: string; contentType?: string } = {},
): Promise<Call> {
  const auth = options.auth ?? "header";
  const headers: Record<string, string> = { "content-type": options.contentType ?? "application/json" };
  if (auth === "header") headers["authorization"] = `Bearer ${hsToken}`;
  if (auth === "wrong") headers["authorization"] = `Bearer ${wrongToken}`;
  const url = new URL(path, h.server.url);
  if (auth === "query") url.searchParams.set("access_token", hsToken);
  const response = await request(url, { method, headers, body: options.body ?? null });
  const text = await response.body.text();
  return { status: response.statusCode, body: JSON.parse(text) as Record<string, unknown> };
}

function putTxn(txnId: string, events: unknown[] = [{ type: "m.room.message", event_id: `$${txnId}` }]) {
  return call("PUT", `/_matrix/app/v1/transactions/${txnId}`, { body: JSON.stringify({ events }) });
}

beforeEach(async () => {
  h = await start();
});

afterEach(async () => {
  await h.server.close();
});

describe("Matrix AS endpoint", () => {
  it("Matrix AS endpoint - refuses a request without a token (401) or with a wrong one (403), and logs it", async () => {
    const none = await call("PUT", "/_matrix/app/v1/transactions/1", { auth: "none", body: '{"events":[]}' });
    expect(none).toMatchObject({ status: 401, body: { errcode: "M_UNAUTHORIZED" } });
    const wrongHeader = await call("GET", "/_matrix/app/v1/users/@a:b", { auth: "wrong" });
    expect(wrongHeader).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
    const wrongQuery = await call("GET", `/_matrix/app/v1/users/@a:b?access_token=${wrongToken}`, {
      auth: "none",
    });
    expect(wrongQuery).toMatchObject({ status: 403, body: { errcode: "M_FORBIDDEN" } });
    const notBearer = await call("POST", "/_matrix/app/v1/ping", { auth: "none", body: "{}" });
    expect(notBearer.status).toBe(401);
    expect(h.handled).toHaveLength(0);
    const refusals = h.logs.filter((line) => line.includes("Matrix AS request with"));
    expect(refusals).toHaveLength(4);
    for (const line of h.logs) {
      expect(line).not.toContain(hsToken);
      expect(line).not.toContain(wrongToken);
    }
  });

  it("Matrix AS endpoint - accepts the token as a bearer header and as the legacy access_token query", async () => {
    expect(await call("POST", "/_matrix/app/v1/ping", { body: "{}" })).toEqual({ status: 200, body: {} });
    expect(await call("POST", "/_matrix/app/v1/ping", { auth: "query", body: "{}" })).toEqual({
      status: 200,
      body: {},
    });
    const legacy = await call("PUT", "/transactions/legacy-1", {
      auth: "query",
      body: '{"events":[{"a":1}]}',
    });
    expect(legacy).toEqual({ status: 200, body: {} });
    expect(h.handled).toEqual([{ txnId: "legacy-1", events: [{ a: 1 }] }]);
  });

  it("Matrix AS endpoint - handles a transaction once; a repeat is answered without the handler", async () => {
    const events = [{ type: "m.room.message", event_id: "$1" }, { malformed: true }, 42];
    expect(await putTxn("7", events)).toEqual({ status: 200, body: {} });
    expect(h.handled).toEqual([{ txnId: "7", events }]);
    expect(await h.kv.keys()).toHaveLength(1);
    expect(await putTxn("7", events)).toEqual({ status: 200, body: {} });
    expect(h.handled).toHaveLength(1);
    expect(await putTxn("8")).toEqual({ status: 200, body: {} });
    expect(h.handled.map((t) => t.txnId)).toEqual(["7", "8"]);
  });

  it("Matrix AS endpoint - a retry with re-serialised events is a repeat; an id reused for other events is handled", async () => {
    const first = [{ type: "m.room.message", event_id: "$a", unsigned: { age: 10 } }];
    expect(await putTxn("1", first)).toEqual({ status: 200, body: {} });
    // The homeserver's retry: same events, another age.
    expect(await putTxn("1", [{ ...first[0], unsigned: { age: 5000 } }])).toEqual({ status: 200, body: {} });
    expect(h.handled).toHaveLength(1);
    // Synapse on SQLite numbers its transactions from 1 again after a restart: new events, old id.
    const after = [{ type: "m.room.message", event_id: "$b" }];
    expect(await putTxn("1", after)).toEqual({ status: 200, body: {} });
    expect(h.handled.map((t) => t.events)).toEqual([first, after]);
    expect(h.logs.some((l) => l.includes("transaction id reused"))).toBe(true);
  });

  it("Matrix AS endpoint - encryption fields go to onCrypto, checked, before the events; bad ones are logged", async () => {
    await h.server.close();
    const order: string[] = [];
    h = await start({
      onCrypto: (transaction, txnId) => {
        order.push(`crypto ${txnId}: ${String(transaction.toDevice.length)} to-device`);
        return Promise.resolve();
      },
      onEvents: (events, txnId) => {
        order.push(`events ${txnId}: ${String(events.length)}`);
        return Promise.resolve();
      },
    });
    const toDevice = {
      to_user_id: "@fedgate:tchap.localhost",
      to_device_id: "FEDGATEBRIDGE",
      type: "m.room.encrypted",
      sender: "@official:tchap.localhost",
      content: { ciphertext: {} },
    };
    const body = (messages: unknown[], events: unknown[] = [{ event_id: "$m" }]) =>
      JSON.stringify({ events, "de.sorunome.msc2409.to_device": messages });
    expect(await call("PUT", "/_matrix/app/v1/transactions/1", { body: body([toDevice, "junk"]) })).toEqual({
      status: 200,
      body: {},
    });
    expect(order).toEqual(["crypto 1: 1 to-device", "events 1: 1"]);
    expect(
      h.logs.some((l) => l.includes("FG_NATIVE_INVALID") && l.includes("encryption fields left out")),
    ).toBe(true);
    // Without events of its own, a transaction of to-device messages is told apart by them: the same id
    // with other messages (a restarted homeserver counting from 1 again) is handled, not taken for a repeat.
    const other = { ...toDevice, content: { ciphertext: { other: true } } };
    for (const messages of [[toDevice], [other], [other]])
      await call("PUT", "/_matrix/app/v1/transactions/2", { body: body(messages, []) });
    expect(order.filter((line) => line.startsWith("crypto 2"))).toHaveLength(2);
  });

  it("Matrix AS endpoint - a failing handler answers 500 M_UNKNOWN, records nothing, and the retry is handled", async () => {
    let failures = 1;
    h.onEvents = (events, txnId) => {
      if (failures-- > 0) return Promise.reject(new Error("bus unavailable"));
      h.handled.push({ txnId, events });
      return Promise.resolve();
    };
    expect(await putTxn("9")).toMatchObject({ status: 500, body: { errcode: "M_UNKNOWN" } });
    expect(await h.kv.keys()).toHaveLength(0);
    expect(h.handled).toHaveLength(0);
    expect(await putTxn("9")).toEqual({ status: 200, body: {} });
    expect(h.handled.map((t) => t.txnId)).toEqual(["9"]);
    expect(await putTxn("9")).toEqual({ status: 200, body: {} });
    expect(h.handled).toHaveLength(1);
  });

  it("Matrix AS endpoint - a failing store answers 500 so that the homeserver retries", async () => {
    h.kv.get = () => Promise.reject(new Error("KV unavailable"));
    expect(await putTxn("10")).toMatchObject({ status: 500, body: { errcode: "M_UNKNOWN" } });
    expect(h.handled).toHaveLength(0);
  });

  it("Matrix AS endpoint - answers only once the handler has resolved", async () => {
    const gate = deferred();
    let resolved = false;
    h.onEvents = async (events, txnId) => {
      await gate.promise;
      h.handled.push({ txnId, events });
      resolved = true;
    };
    let answeredAt: boolean | undefined;
    const answer = putTxn("11").then((result) => {
      answeredAt = resolved;
      return result;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(answeredAt).toBeUndefined();
    gate.resolve();
    expect(await answer).toEqual({ status: 200, body: {} });
    expect(answeredAt).toBe(true);
  });

  it("Matrix AS endpoint - the same transaction sent twice at once runs the handler once", async () => {
    const gate = deferred();
    let running = 0;
    h.onEvents = async (events, txnId) => {
      running++;
      await gate.promise;
      h.handled.push({ txnId, events });
    };
    const first = putTxn("12");
    const second = putTxn("12");
    const other = putTxn("13");
    await new Promise((r) => setTimeout(r, 200));
    // Another transaction is not held up by the first; the same one is.
    expect(running).toBe(2);
    gate.resolve();
    expect(await Promise.all([first, second, other])).toEqual([
      { status: 200, body: {} },
      { status: 200, body: {} },
      { status: 200, body: {} },
    ]);
    expect(h.handled.map((t) => t.txnId).sort()).toEqual(["12", "13"]);
  });

  it("Matrix AS endpoint - refuses a body that is not JSON, not an object, or has no events array (400)", async () => {
    const path = "/_matrix/app/v1/transactions/14";
    expect(await call("PUT", path, { body: "{not json" })).toMatchObject({
      status: 400,
      body: { errcode: "M_NOT_JSON" },
    });
    expect(await call("PUT", path, { body: "" })).toMatchObject({
      status: 400,
      body: { errcode: "M_NOT_JSON" },
    });
    expect(await call("PUT", path, { body: "[]" })).toMatchObject({
      status: 400,
      body: { errcode: "M_BAD_JSON" },
    });
    expect(await call("PUT", path, { body: '{"events":{}}' })).toMatchObject({
      status: 400,
      body: { errcode: "M_BAD_JSON" },
    });
    // The content type does not matter: the body is JSON or it is not.
    expect(await call("PUT", path, { body: '{"events":[]}', contentType: "text/plain" })).toEqual({
      status: 200,
      body: {},
    });
    expect(h.handled.map((t) => t.txnId)).toEqual(["14"]);
    expect(h.logs.filter((line) => line.includes('"level":40')).length).toBeGreaterThanOrEqual(4);
  });

  it("Matrix AS endpoint - refuses a body over the limit (413 M_TOO_LARGE)", async () => {
    const body = JSON.stringify({ events: [{ body: "x".repeat(11 * 1024 * 1024) }] });
    expect(await call("PUT", "/_matrix/app/v1/transactions/15", { body })).toMatchObject({
      status: 413,
      body: { errcode: "M_TOO_LARGE" },
    });
    expect(h.handled).toHaveLength(0);
  });

  it("Matrix AS endpoint - user and alias queries are 404 unless the bridge knows them", async () => {
    expect(await call("GET", "/_matrix/app/v1/users/%40fedgate_x%3Atchap.localhost")).toMatchObject({
      status: 404,
      body: { errcode: "M_NOT_FOUND" },
    });
    expect(await call("GET", "/_matrix/app/v1/rooms/%23fedgate_x%3Atchap.localhost")).toMatchObject({
      status: 404,
      body: { errcode: "M_NOT_FOUND" },
    });
    await h.server.close();
    const asked: string[] = [];
    h = await start({
      userExists: (userId) => {
        asked.push(userId);
        return Promise.resolve(userId === "@fedgate_x:tchap.localhost");
      },
      aliasExists: (alias) => {
        asked.push(alias);
        if (alias === "#broken:tchap.localhost") return Promise.reject(new Error("store down"));
        return Promise.resolve(alias === "#fedgate_x:tchap.localhost");
      },
    });
    expect(await call("GET", "/_matrix/app/v1/users/%40fedgate_x%3Atchap.localhost")).toEqual({
      status: 200,
      body: {},
    });
    expect((await call("GET", "/users/%40fedgate_y%3Atchap.localhost", { auth: "query" })).status).toBe(404);
    expect(await call("GET", "/_matrix/app/v1/rooms/%23fedgate_x%3Atchap.localhost")).toEqual({
      status: 200,
      body: {},
    });
    expect((await call("GET", "/_matrix/app/v1/rooms/%23broken%3Atchap.localhost")).status).toBe(500);
    expect(asked).toEqual([
      "@fedgate_x:tchap.localhost",
      "@fedgate_y:tchap.localhost",
      "#fedgate_x:tchap.localhost",
      "#broken:tchap.localhost",
    ]);
  });

  it("Matrix AS endpoint - an unknown path is 404 M_UNRECOGNIZED", async () => {
    expect(await call("GET", "/_matrix/app/v1/thirdparty/protocol/irc")).toMatchObject({
      status: 404,
      body: { errcode: "M_UNRECOGNIZED" },
    });
  });
});
