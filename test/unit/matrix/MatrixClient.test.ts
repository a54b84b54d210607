/**
 * MatrixClient against a local server standing in for the homeserver: what goes out (token, identity
 * assertion, encoded paths) and how each kind of answer maps onto fedgate's errors. What Synapse itself
 * does is in test/integration/matrix/client.test.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MatrixClient, matrixErrcode, parseMxc } from "../../../bridges/matrix/MatrixClient.js";
import { FedgateError, PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { rejectionWithout } from "../../helpers/rejection.js";

const asToken = "as-token-0f3c8e9d2a";

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
}

/** The answer the stand-in gives next, by path (without query). */
const answers = new Map<string, (res: ServerResponse) => void>();
const seen: Seen[] = [];
const logs: string[] = [];
let server: Server;
let client: MatrixClient;
let homeserverUrl: string;

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
}

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        authorization: req.headers.authorization,
        contentType: req.headers["content-type"],
        body: Buffer.concat(chunks).toString("utf8"),
      });
      const answer = answers.get((req.url ?? "").split("?")[0] ?? "");
      if (answer === undefined) json(404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" })(res);
      else answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  homeserverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  client = new MatrixClient({
    homeserverUrl,
    asToken,
    log: createLogger("debug", "test", { write: (line: string) => logs.push(line) }),
    requestTimeoutMs: 300,
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  answers.clear();
  seen.length = 0;
  logs.length = 0;
});

/** The error a promise rejects with, checked to be fedgate's and free of the token, in logs too. */
async function failure(promise: Promise<unknown>): Promise<FedgateError> {
  const error = await rejectionWithout(promise, asToken);
  expect(error.message).not.toContain("?");
  expect(logs.join("\n")).not.toContain(asToken);
  return error;
}

const room = "!abc:tchap.localhost";
const ghost = "@fedgate_xmpp_a:tchap.localhost";
const sendPath = "/_matrix/client/v3/rooms/!abc%3Atchap.localhost/send/m.room.message/t%2F1";

describe("MatrixClient requests", () => {
  it("sends the as_token as a bearer token, asserts the ghost with user_id, and encodes path parts", async () => {
    answers.set(sendPath, json(200, { event_id: "$e1" }));
    expect(await client.sendEvent(room, "m.room.message", { body: "hi" }, "t/1", ghost)).toBe("$e1");
    expect(seen).toEqual([
      {
        method: "PUT",
        url: `${sendPath}?user_id=%40fedgate_xmpp_a%3Atchap.localhost`,
        authorization: `Bearer ${asToken}`,
        contentType: "application/json",
        body: JSON.stringify({ body: "hi" }),
      },
    ]);
  });

  it("acts as the AS's own sender without user_id", async () => {
    answers.set("/_matrix/client/v3/createRoom", json(200, { room_id: room }));
    expect(await client.createRoom({ preset: "private_chat" })).toBe(room);
    expect(seen[0]?.url).toBe("/_matrix/client/v3/createRoom");
  });

  it("uploads raw bytes with their type and name", async () => {
    answers.set("/_matrix/media/v3/upload", json(200, { content_uri: "mxc://tchap.localhost/AbC" }));
    const uri = await client.uploadMedia(Buffer.from("%PDF"), "application/pdf", "Lage Süd.pdf", ghost);
    expect(uri).toBe("mxc://tchap.localhost/AbC");
    expect(seen[0]).toMatchObject({
      method: "POST",
      url: "/_matrix/media/v3/upload?filename=Lage+S%C3%BCd.pdf&user_id=%40fedgate_xmpp_a%3Atchap.localhost",
      contentType: "application/pdf",
      body: "%PDF",
    });
  });

  it("sends a state event with an empty state key to the path ending in a slash", async () => {
    answers.set(
      "/_matrix/client/v3/rooms/!abc%3Atchap.localhost/state/m.room.topic/",
      json(200, { event_id: "$s" }),
    );
    expect(await client.sendState(room, "m.room.topic", "", { topic: "Lage" })).toBe("$s");
  });

  it("declines with a reason, reads a state event whole, and lists who is in a room or invited to it", async () => {
    const path = "/_matrix/client/v3/rooms/!abc%3Atchap.localhost";
    answers.set(`${path}/leave`, json(200, {}));
    await client.leaveRoom(room, "@fedgate_x:tchap.localhost", "not a direct chat");
    expect(JSON.parse(seen.at(-1)?.body ?? "")).toEqual({ reason: "not a direct chat" });
    answers.set(
      `${path}/state/m.room.create/`,
      json(200, { sender: "@claire:tchap.localhost", content: {} }),
    );
    expect(await client.getStateEvent(room, "m.room.create", "")).toMatchObject({
      sender: "@claire:tchap.localhost",
    });
    expect(seen.at(-1)?.url).toContain("format=event");
    const member = (user: unknown, membership: unknown) => ({ state_key: user, content: { membership } });
    answers.set(
      `${path}/members`,
      json(200, {
        chunk: [
          member("@claire:tchap.localhost", "join"),
          member("@bob:tchap.localhost", "invite"),
          member("@left:tchap.localhost", "leave"),
          member("@banned:tchap.localhost", "ban"),
          member(7, "join"),
          "not an event",
        ],
      }),
    );
    expect(await client.presentMembers(room)).toEqual(["@claire:tchap.localhost", "@bob:tchap.localhost"]);
  });
});

describe("MatrixClient reading back", () => {
  it("reads at most so many of a sender's latest events, newest first, through a filter, and keeps only theirs", async () => {
    const path = "/_matrix/client/v3/rooms/!abc%3Atchap.localhost/messages";
    const event = (sender: unknown, id: string) => ({ sender, event_id: id, content: {} });
    answers.set(
      path,
      json(200, {
        chunk: [
          event(ghost, "$3"),
          event("@claire:tchap.localhost", "$forged"),
          "not an event",
          event(ghost, "$2"),
          event(ghost, "$1"),
        ],
      }),
    );
    const events = await client.latestEventsBy(room, ghost, 4, ghost);
    expect(events.map((e) => e["event_id"])).toEqual(["$3", "$2"]);
    const query = new URLSearchParams(seen[0]?.url.split("?")[1]);
    expect(query.get("dir")).toBe("b");
    expect(query.get("limit")).toBe("4");
    expect(JSON.parse(query.get("filter") ?? "")).toEqual({ senders: [ghost] });
    expect(query.get("user_id")).toBe(ghost);
  });

  it("refuses an answer without a list of events", async () => {
    answers.set("/_matrix/client/v3/rooms/!abc%3Atchap.localhost/messages", json(200, { chunk: "none" }));
    const error = await failure(client.latestEventsBy(room, ghost, 3));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toContain("chunk");
  });
});

describe("MatrixClient errors", () => {
  it("takes a 4xx as permanent, with Matrix's errcode and error text", async () => {
    answers.set(sendPath, json(403, { errcode: "M_FORBIDDEN", error: "User not in room" }));
    const error = await failure(client.sendEvent(room, "m.room.message", {}, "t/1", ghost));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({
      code: "FG_PEER_REFUSED",
      detail: { errcode: "M_FORBIDDEN", status: 403, method: "PUT", path: sendPath },
    });
    expect(error.message).toContain("User not in room");
    expect(matrixErrcode(error)).toBe("M_FORBIDDEN");
    expect(matrixErrcode(new Error("M_FORBIDDEN"))).toBeUndefined();
  });

  it("takes 429 as transient and keeps how long to wait, from the body or Retry-After", async () => {
    answers.set(
      sendPath,
      json(429, { errcode: "M_LIMIT_EXCEEDED", error: "Too many", retry_after_ms: 1500 }),
    );
    const fromBody = await failure(client.sendEvent(room, "m.room.message", {}, "t/1"));
    expect(fromBody).toBeInstanceOf(TransientError);
    expect(fromBody).toMatchObject({
      code: "FG_PEER_UNAVAILABLE",
      detail: { errcode: "M_LIMIT_EXCEEDED", status: 429, retryAfterMs: 1500 },
    });
    answers.set(sendPath, json(429, { errcode: "M_LIMIT_EXCEEDED" }, { "retry-after": "3" }));
    const fromHeader = await failure(client.sendEvent(room, "m.room.message", {}, "t/1"));
    expect(fromHeader.detail["retryAfterMs"]).toBe(3000);
  });

  it("takes 5xx as transient, JSON or not", async () => {
    answers.set(sendPath, json(500, { errcode: "M_UNKNOWN", error: "Internal server error" }));
    const internal = await failure(client.sendEvent(room, "m.room.message", {}, "t/1"));
    expect(internal).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true, detail: { status: 500 } });
    answers.set(sendPath, (res) => {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<html>Bad Gateway</html>");
    });
    const proxy = await failure(client.sendEvent(room, "m.room.message", {}, "t/1"));
    expect(proxy).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true, detail: { status: 502 } });
    expect(proxy.message).toContain("not a JSON answer");
  });

  it("refuses a 2xx answer that is not JSON, too large, or lacks what it should name", async () => {
    answers.set(sendPath, (res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>welcome</html>");
    });
    expect(await failure(client.sendEvent(room, "m.room.message", {}, "t/1"))).toMatchObject({
      code: "FG_PEER_REFUSED",
      detail: { status: 200 },
    });
    answers.set(sendPath, json(200, { event_id: "$e", padding: "x".repeat(2 * 1024 * 1024) }));
    const large = await failure(client.sendEvent(room, "m.room.message", {}, "t/1"));
    expect(large.message).toContain("larger than");
    answers.set(sendPath, json(200, {}));
    expect(await failure(client.sendEvent(room, "m.room.message", {}, "t/1"))).toMatchObject({
      code: "FG_PEER_REFUSED",
    });
  });

  it("reads an unknown profile as empty and absent state as undefined, but an unknown endpoint as an error", async () => {
    answers.set(
      "/_matrix/client/v3/profile/%40nobody%3Atchap.localhost",
      json(404, { errcode: "M_UNKNOWN", error: "No row found (profiles)" }),
    );
    expect(await client.getProfile("@nobody:tchap.localhost")).toEqual({});
    answers.set(
      "/_matrix/client/v3/rooms/!abc%3Atchap.localhost/state/m.room.topic/",
      json(404, { errcode: "M_NOT_FOUND", error: "Event not found" }),
    );
    expect(await client.getState(room, "m.room.topic", "")).toBeUndefined();
    // Nothing answers this path: a wrong homeserver URL must not look like a room without state.
    const unknown = await failure(client.getState(room, "m.room.name", ""));
    expect(unknown).toMatchObject({
      code: "FG_PEER_REFUSED",
      detail: { errcode: "M_UNRECOGNIZED", status: 404 },
    });
  });

  it("takes an existing user as registered, and other refusals as errors", async () => {
    answers.set(
      "/_matrix/client/v3/register",
      json(400, { errcode: "M_USER_IN_USE", error: "User ID already taken." }),
    );
    await client.registerUser("fedgate_xmpp_a");
    expect(JSON.parse(seen[0]?.body ?? "")).toEqual({
      type: "m.login.application_service",
      username: "fedgate_xmpp_a",
      inhibit_login: true,
    });
    answers.set(
      "/_matrix/client/v3/register",
      json(400, { errcode: "M_EXCLUSIVE", error: "Invalid user localpart" }),
    );
    expect(matrixErrcode(await failure(client.registerUser("someone")))).toBe("M_EXCLUSIVE");
  });

  it("takes a homeserver that does not answer in time as transient", async () => {
    answers.set(sendPath, () => undefined);
    const error = await failure(client.sendEvent(room, "m.room.message", {}, "t/1"));
    expect(error).toMatchObject({
      code: "FG_PEER_UNAVAILABLE",
      transient: true,
      detail: { method: "PUT", path: sendPath },
    });
    expect(error.message).toContain("no answer within 300 ms");
  });
});

describe("mxc URIs", () => {
  it("splits an mxc URI and builds its authenticated download, with the token in a header only", () => {
    expect(parseMxc("mxc://[::1]:8448/AbC-_9")).toEqual({ server: "[::1]:8448", mediaId: "AbC-_9" });
    expect(client.mediaDownload("mxc://tchap.localhost/AbC")).toEqual({
      url: `${homeserverUrl}_matrix/client/v1/media/download/tchap.localhost/AbC`,
      headers: { authorization: `Bearer ${asToken}` },
    });
    expect(client.mediaDownload("mxc://tchap.localhost/AbC", "a b.pdf").url).toBe(
      `${homeserverUrl}_matrix/client/v1/media/download/tchap.localhost/AbC/a%20b.pdf`,
    );
  });

  it("refuses a malformed mxc URI with FG_NATIVE_INVALID", () => {
    for (const mxc of [
      "",
      "mxc://",
      "mxc://tchap.localhost",
      "mxc://tchap.localhost/a/b",
      "mxc://tch ap/x",
      "http://a/b",
      "mxc://a/b?c",
    ]) {
      expect(() => client.mediaDownload(mxc), mxc).toThrow(
        expect.objectContaining({ code: "FG_NATIVE_INVALID" }) as Error,
      );
    }
  });

  it("refuses a homeserver URL that is not http(s)", () => {
    for (const homeserver of ["not a url", "ftp://synapse"]) {
      expect(
        () => new MatrixClient({ homeserverUrl: homeserver, asToken, log: createLogger("silent") }),
      ).toThrow(expect.objectContaining({ code: "FG_CONFIG_INVALID" }) as Error);
    }
  });
});
