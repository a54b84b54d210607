/**
 * MatrixClient and the media proxy against a real Synapse, acting as the application service: ghosts
 * registered and masqueraded as, rooms, events with transaction ids, state, redactions, media through the
 * authenticated download and through the proxy's signed links, and how refusals and an unreachable
 * homeserver surface as fedgate's errors.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { request } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { describeAttachment, fetchAttachment } from "../../../bridges/kit/fetchAttachment.js";
import { MatrixClient, matrixErrcode, parseMxc } from "../../../bridges/matrix/MatrixClient.js";
import { createMediaRouter, mediaLink } from "../../../bridges/matrix/MediaProxy.js";
import { generateRegistration } from "../../../bridges/matrix/registration.js";
import { FedgateError, PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import { freePort } from "../../harness/servers/serverProcess.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { startSynapseOrSkip } from "../../helpers/synapse.js";
import { rejectionWithout } from "../../helpers/rejection.js";

type Json = Record<string, unknown>;

const log = createLogger("silent");
// Nothing listens there: Synapse only queues transactions for it, which these tests do not need.
const { registration, yaml } = generateRegistration({
  id: "fedgate",
  url: "http://127.0.0.1:9",
  serverName: "tchap.localhost",
});
const bot = "@fedgate:tchap.localhost";
const ghost = "@fedgate_xmpp_mueller:tchap.localhost";
const otherGhost = "@fedgate_xmpp_schmidt:tchap.localhost";

const synapse = await startSynapseOrSkip({ appServiceRegistrations: [yaml] });
const client =
  synapse === undefined
    ? undefined
    : new MatrixClient({ homeserverUrl: synapse.baseUrl, asToken: registration.as_token, log });

/** One client-server API call with a user's own token; fails with Synapse's answer unless it is 200. */
async function asUser(
  method: "GET" | "POST" | "PUT",
  path: string,
  token: string,
  body?: Json,
): Promise<Json> {
  if (synapse === undefined) throw new Error("no synapse");
  const response = await request(`${synapse.baseUrl}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const answer = (await response.body.json()) as Json;
  if (response.statusCode !== 200)
    throw new Error(`${method} ${path}: ${String(response.statusCode)} ${JSON.stringify(answer)}`);
  return answer;
}

function failure(promise: Promise<unknown>): Promise<FedgateError> {
  return rejectionWithout(promise, registration.as_token);
}

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("no synapse");
  return value;
}

describe.skipIf(synapse === undefined)("MatrixClient - against Synapse", () => {
  const official = { userId: "", token: "" };
  let roomId = "";
  let proxy: Server | undefined;

  afterAll(async () => {
    if (proxy !== undefined) {
      const server = proxy;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await synapse?.stop();
  });

  it("MatrixClient - registers ghosts, again without complaint, and only in the AS's namespace", async () => {
    const matrix = must(client);
    await matrix.registerUser("fedgate_xmpp_mueller");
    await matrix.registerUser("fedgate_xmpp_mueller");
    await matrix.registerUser("fedgate_xmpp_schmidt");
    const outside = await failure(matrix.registerUser("mueller"));
    expect(outside).toBeInstanceOf(PermanentError);
    expect(outside).toMatchObject({
      code: "FG_PEER_REFUSED",
      detail: { errcode: "M_EXCLUSIVE", status: 400 },
    });
  });

  it("MatrixClient - sets a ghost's display name and avatar as the ghost; unknown users have an empty profile", async () => {
    const matrix = must(client);
    await matrix.setDisplayName(ghost, "Hans Müller (BPOL)");
    const avatar = await matrix.uploadMedia(randomBytes(64), "image/png", "avatar.png", ghost);
    await matrix.setAvatarUrl(ghost, avatar);
    expect(await matrix.getProfile(ghost)).toEqual({ displayname: "Hans Müller (BPOL)", avatar_url: avatar });
    expect(await matrix.getProfile("@nobody:tchap.localhost")).toEqual({});
  });

  it("MatrixClient - the bot creates a room, invites a ghost and a user, who join", async () => {
    const matrix = must(client);
    const user = await must(synapse).registerUser("official", "pw-official");
    official.userId = user.userId;
    official.token = user.accessToken;
    roomId = await matrix.createRoom({ preset: "private_chat", name: "Lage BPOL" });
    expect(roomId).toMatch(/^!.+:tchap\.localhost$/);
    await matrix.invite(roomId, ghost);
    // Inviting again, joining again: both fine, as a retried delivery does them.
    await matrix.invite(roomId, ghost);
    expect(await matrix.joinRoom(roomId, ghost)).toBe(roomId);
    expect(await matrix.joinRoom(roomId, ghost)).toBe(roomId);
    // Synapse refuses to invite a member (M_FORBIDDEN); the client takes that as done.
    await matrix.invite(roomId, ghost);
    await matrix.invite(roomId, official.userId);
    await asUser("POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, official.token, {});
    expect((await matrix.joinedMembers(roomId)).sort()).toEqual([bot, ghost, official.userId].sort());
  });

  it("MatrixClient - a ghost's message reaches a user; a repeated transaction id sends nothing new", async () => {
    const matrix = must(client);
    const txnId = randomUUID();
    const content = { msgtype: "m.text", body: "Lagebesprechung um 14 Uhr" };
    const eventId = await matrix.sendEvent(roomId, "m.room.message", content, txnId, ghost);
    const read = await asUser(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`,
      official.token,
    );
    expect(read).toMatchObject({ sender: ghost, type: "m.room.message", content });

    expect(await matrix.sendEvent(roomId, "m.room.message", content, txnId, ghost)).toBe(eventId);
    // Even with other content: the transaction id alone decides.
    expect(
      await matrix.sendEvent(roomId, "m.room.message", { msgtype: "m.text", body: "x" }, txnId, ghost),
    ).toBe(eventId);
    // Another room, or another event type, is another transaction.
    const notice = await matrix.sendEvent(roomId, "m.room.notice.test", content, txnId, ghost);
    expect(notice).not.toBe(eventId);
  });

  it("MatrixClient - Synapse keys an AS's transaction ids by path, not by the user it acts as", async () => {
    const matrix = must(client);
    await matrix.invite(roomId, otherGhost);
    await matrix.joinRoom(roomId, otherGhost);
    const txnId = randomUUID();
    const content = { msgtype: "m.text", body: "von Müller" };
    const first = await matrix.sendEvent(roomId, "m.room.message", content, txnId, ghost);
    const second = await matrix.sendEvent(roomId, "m.room.message", content, txnId, otherGhost);
    const byBot = await matrix.sendEvent(roomId, "m.room.message", content, txnId);
    // The second ghost's and the bot's messages were never sent: the answer is the first ghost's event.
    expect(second).toBe(first);
    expect(byBot).toBe(first);
  });

  it("MatrixClient - sets and reads state; a state event the room lacks is undefined", async () => {
    const matrix = must(client);
    expect(await matrix.getState(roomId, "m.room.name", "")).toEqual({ name: "Lage BPOL" });
    expect(await matrix.getState(roomId, "m.room.topic", "")).toBeUndefined();
    const link = { linkId: "lage", networks: ["xmpp", "stashcat"] };
    const eventId = await matrix.sendState(roomId, "de.fedgate.link", "", link);
    expect(eventId).toMatch(/^\$/);
    expect(await matrix.getState(roomId, "de.fedgate.link", "")).toEqual(link);
    await matrix.sendState(roomId, "de.fedgate.link", "xmpp/bpol", {
      room: "lage@conference.bpol.localhost",
    });
    expect(await matrix.getState(roomId, "de.fedgate.link", "xmpp/bpol")).toEqual({
      room: "lage@conference.bpol.localhost",
    });
    expect(await matrix.getState(roomId, "de.fedgate.link", "stashcat/ni")).toBeUndefined();
  });

  it("MatrixClient - redacts a ghost's message", async () => {
    const matrix = must(client);
    const eventId = await matrix.sendEvent(
      roomId,
      "m.room.message",
      { msgtype: "m.text", body: "versehentlich" },
      randomUUID(),
      ghost,
    );
    const txnId = randomUUID();
    const redaction = await matrix.redact(roomId, eventId, txnId, ghost, "retracted on XMPP");
    expect(redaction).toMatch(/^\$/);
    expect(await matrix.redact(roomId, eventId, txnId, ghost, "retracted on XMPP")).toBe(redaction);
    const read = await asUser(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`,
      official.token,
    );
    expect(read["content"]).toEqual({});
    expect((read["unsigned"] as Json)["redacted_because"]).toMatchObject({
      event_id: redaction,
      sender: ghost,
    });
  });

  it("MatrixClient - uploads a file and downloads it through the authenticated media API and the proxy", async () => {
    const matrix = must(client);
    // A PDF's signature first: files are described with the type their bytes show.
    const bytes = Buffer.concat([Buffer.from("%PDF-1.7\n"), randomBytes(200_000)]);
    const mxc = await matrix.uploadMedia(bytes, "application/pdf", "Lagebild Süd.pdf", ghost);
    expect(mxc).toMatch(/^mxc:\/\/tchap\.localhost\/[A-Za-z0-9_-]+$/);

    const direct = matrix.mediaDownload(mxc);
    const response = await request(direct.url, { headers: direct.headers });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("application/pdf");
    expect(Buffer.from(await response.body.arrayBuffer()).equals(bytes)).toBe(true);
    // Without the token, the authenticated media API refuses.
    const anonymous = await request(direct.url);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    // The legacy unauthenticated download serves no media uploaded since authenticated media came.
    const { server: mediaServer, mediaId } = parseMxc(mxc);
    const legacy = await request(
      `${must(synapse).baseUrl}/_matrix/media/v3/download/${mediaServer}/${mediaId}`,
    );
    expect({ status: legacy.statusCode, body: await legacy.body.json() }).toMatchObject({
      status: 404,
      body: { errcode: "M_NOT_FOUND" },
    });
    // What a Matrix bridge learns of a file with the download headers.
    const described = await describeAttachment(matrix.mediaDownload(mxc, "Lagebild Süd.pdf").url, {
      maxBytes: 1024 * 1024,
      hosts: { trusted: [must(synapse).baseUrl] },
      headers: direct.headers,
    });
    expect(described).toMatchObject({
      name: "Lagebild Süd.pdf",
      size: bytes.length,
      mediaType: "application/pdf",
    });

    const app = express();
    const key = randomBytes(32);
    app.use(createMediaRouter({ client: matrix, key, baseUrl: "http://unused", log, maxBytes: 1024 * 1024 }));
    const server = createServer(app);
    proxy = server;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const lifetimeSeconds = 3600;
    const link = mediaLink({ key, baseUrl, lifetimeSeconds }, mxc, "Lagebild Süd.pdf");
    // Another bridge fetches it like any attachment, with no Matrix token, from a host it lists.
    const fetched = await fetchAttachment(
      { ...described, url: link },
      { maxBytes: 1024 * 1024, hosts: { trusted: [baseUrl] } },
    );
    expect(fetched.equals(bytes)).toBe(true);
    const viaProxy = await request(link);
    await viaProxy.body.dump();
    expect(viaProxy.headers).toMatchObject({
      "content-type": "application/pdf",
      "content-length": String(bytes.length),
      "content-disposition": `attachment; filename="Lagebild S_d.pdf"; filename*=UTF-8''Lagebild%20S%C3%BCd.pdf`,
      "x-content-type-options": "nosniff",
    });
    const small = createServer(
      express().use(createMediaRouter({ client: matrix, key, baseUrl, log, maxBytes: 1000 })),
    );
    await new Promise<void>((resolve) => small.listen(0, "127.0.0.1", resolve));
    try {
      const smallBase = `http://127.0.0.1:${(small.address() as AddressInfo).port}`;
      const tooLarge = await request(mediaLink({ key, baseUrl: smallBase, lifetimeSeconds }, mxc, "a.pdf"));
      await tooLarge.body.dump();
      expect(tooLarge.statusCode).toBe(413);
    } finally {
      small.closeAllConnections();
      await new Promise((resolve) => small.close(resolve));
    }
    const missing = await request(
      mediaLink({ key, baseUrl, lifetimeSeconds }, "mxc://tchap.localhost/NoSuchMediaId", "a.pdf"),
    );
    await missing.body.dump();
    expect(missing.statusCode).toBe(404);
    const forged = await request(link.replace(/sig=.*/, `sig=${"A".repeat(43)}`));
    await forged.body.dump();
    expect(forged.statusCode).toBe(403);
  });

  it("MatrixClient - a ghost outside the room is refused with M_FORBIDDEN, as a permanent error", async () => {
    const matrix = must(client);
    const outsider = "@fedgate_xmpp_fremd:tchap.localhost";
    await matrix.registerUser("fedgate_xmpp_fremd");
    const error = await failure(
      matrix.sendEvent(
        roomId,
        "m.room.message",
        { msgtype: "m.text", body: "hallo" },
        randomUUID(),
        outsider,
      ),
    );
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({
      code: "FG_PEER_REFUSED",
      detail: { errcode: "M_FORBIDDEN", status: 403, method: "PUT" },
    });
    expect(matrixErrcode(error)).toBe("M_FORBIDDEN");
    expect(String(error.detail["path"])).toContain("/send/m.room.message/");
    expect(matrixErrcode(await failure(matrix.getState(roomId, "m.room.name", "", outsider)))).toBe(
      "M_FORBIDDEN",
    );
    // Not taken for "already a member": the outsider may not invite anyone.
    expect(matrixErrcode(await failure(matrix.invite(roomId, ghost, outsider)))).toBe("M_FORBIDDEN");
  });

  it("MatrixClient - acting as an unregistered ghost or a user outside the namespace is forbidden", async () => {
    const matrix = must(client);
    const unregistered = await failure(matrix.joinRoom(roomId, "@fedgate_xmpp_neu:tchap.localhost"));
    expect(unregistered).toMatchObject({ code: "FG_PEER_REFUSED", detail: { errcode: "M_FORBIDDEN" } });
    const outside = await failure(matrix.joinRoom(roomId, official.userId));
    expect(outside).toMatchObject({ code: "FG_PEER_REFUSED", detail: { errcode: "M_FORBIDDEN" } });
  });

  it("MatrixClient - a ghost leaves the room", async () => {
    const matrix = must(client);
    await matrix.leaveRoom(roomId, otherGhost);
    expect(await matrix.joinedMembers(roomId)).not.toContain(otherGhost);
  });

  it("MatrixClient - a wrong as_token is refused permanently, and never shown", async () => {
    const wrongToken = `wrong-${randomUUID()}`;
    const wrong = new MatrixClient({ homeserverUrl: must(synapse).baseUrl, asToken: wrongToken, log });
    const error = await failure(wrong.getProfile(ghost).then(() => wrong.createRoom({})));
    expect(error).toMatchObject({
      code: "FG_PEER_REFUSED",
      detail: { errcode: "M_UNKNOWN_TOKEN", status: 401 },
    });
    expect(error.message).not.toContain(wrongToken);
  });

  it("MatrixClient - an unreachable homeserver is a transient error", async () => {
    const port = await freePort();
    const unreachable = new MatrixClient({
      homeserverUrl: `http://127.0.0.1:${String(port)}`,
      asToken: registration.as_token,
      log,
    });
    const error = await failure(unreachable.sendEvent(roomId, "m.room.message", {}, randomUUID(), ghost));
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: "FG_PEER_UNAVAILABLE", detail: { method: "PUT" } });
    expect(error.message).toContain("ECONNREFUSED");
  });

  it("MatrixClient - Synapse forgets an AS's transaction ids when it restarts", async () => {
    const matrix = must(client);
    const txnId = randomUUID();
    const content = { msgtype: "m.text", body: "vor dem Neustart" };
    const before = await matrix.sendEvent(roomId, "m.room.message", content, txnId, ghost);
    await must(synapse).restart();
    const after = await matrix.sendEvent(roomId, "m.room.message", content, txnId, ghost);
    expect(after).not.toBe(before);
  });
});
