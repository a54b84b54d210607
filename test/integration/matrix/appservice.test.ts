import type { HttpListener } from "../../../gateway/platform/http/HttpListener.js";
/**
 * The AS endpoint against a real Synapse and nats-server: Synapse delivers a room's message to the endpoint
 * in a transaction, the handler sees it once, and the transaction ids kept in JetStream KV outlive the
 * endpoint, so a restarted one answers a replay without handling it again.
 */
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { request } from "undici";
import { listenAppService, openTxnStore, txnBucket } from "../../../bridges/matrix/AppServiceEndpoint.js";
import { generateRegistration } from "../../../bridges/matrix/registration.js";
import { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { freePort } from "../../harness/servers/serverProcess.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { startSynapseOrSkip } from "../../helpers/synapse.js";

type Json = Record<string, unknown>;

interface Received {
  txnId: string;
  events: readonly unknown[];
}

const log = createLogger("silent");
const port = await freePort();
const { registration, yaml } = generateRegistration({
  id: "fedgate",
  url: `http://127.0.0.1:${String(port)}`,
  serverName: "tchap.localhost",
});
const bot = "@fedgate:tchap.localhost";

const nats = await startNatsOrSkip();
const synapse =
  nats === undefined ? undefined : await startSynapseOrSkip({ appServiceRegistrations: [yaml] });
// The tests are skipped then, and afterAll with them.
if (synapse === undefined) await nats?.stop();

/** One client-server API call; fails with Synapse's answer unless it is 200. */
async function matrix(
  method: "GET" | "POST" | "PUT",
  path: string,
  token: string,
  body: Json = {},
): Promise<Json> {
  if (synapse === undefined) throw new Error("no synapse");
  const response = await request(`${synapse.baseUrl}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: method === "GET" ? null : JSON.stringify(body),
  });
  const answer = (await response.body.json()) as Json;
  if (response.statusCode !== 200)
    throw new Error(`${method} ${path}: ${String(response.statusCode)} ${JSON.stringify(answer)}`);
  return answer;
}

/** An endpoint on `port` with its own bus connection, as a freshly started bridge process would have. */
async function startEndpoint(received: Received[]): Promise<{ server: HttpListener; bus: JetStreamBus }> {
  if (nats === undefined) throw new Error("no nats");
  const bus = await JetStreamBus.connect({ servers: nats.url, log });
  const server = await listenAppService(
    {
      hsToken: registration.hs_token,
      txns: await openTxnStore(bus),
      onEvents: (events, txnId) => {
        received.push({ txnId, events });
        return Promise.resolve();
      },
      log,
    },
    "127.0.0.1",
    port,
  );
  return { server, bus };
}

function messagesWithBody(received: Received[], body: string): { txnId: string; event: Json }[] {
  return received.flatMap(({ txnId, events }) =>
    (events as Json[])
      .filter((event) => event["type"] === "m.room.message" && (event["content"] as Json)["body"] === body)
      .map((event) => ({ txnId, event })),
  );
}

describe.skipIf(synapse === undefined)("Matrix AS - against Synapse and nats-server", () => {
  const first: Received[] = [];
  const second: Received[] = [];
  let endpoint: { server: HttpListener; bus: JetStreamBus } | undefined;
  let userToken = "";
  let roomId = "";
  let deliveredTxnId = "";
  let deliveredBody: Json = {};

  afterAll(async () => {
    await endpoint?.server.close();
    await endpoint?.bus.close();
    await synapse?.stop();
    await nats?.stop();
  });

  it("Matrix AS - Synapse delivers a room message to the endpoint in a transaction, exactly once", async () => {
    if (synapse === undefined) return;
    endpoint = await startEndpoint(first);
    userToken = (await synapse.registerUser("official", "pw-official")).accessToken;
    roomId = String(
      (await matrix("POST", "/_matrix/client/v3/createRoom", userToken, { preset: "private_chat" }))[
        "room_id"
      ],
    );
    await matrix("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/invite`, userToken, {
      user_id: bot,
    });
    await matrix(
      "POST",
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}?user_id=${encodeURIComponent(bot)}`,
      registration.as_token,
    );

    const body = `Lagebesprechung ${randomUUID()}`;
    const sent = await matrix(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${randomUUID()}`,
      userToken,
      { msgtype: "m.text", body },
    );
    const [delivered] = await eventually(
      () => {
        const found = messagesWithBody(first, body);
        return Promise.resolve(found.length > 0 ? found : undefined);
      },
      30_000,
      "the message in a transaction",
    );
    if (delivered === undefined) throw new Error("unreachable");
    expect(delivered.event).toMatchObject({
      event_id: sent["event_id"],
      room_id: roomId,
      type: "m.room.message",
    });
    // The bot's own join came through the AS too, so the endpoint sees the room's events.
    expect(first.flatMap((t) => t.events as Json[]).some((e) => e["state_key"] === bot)).toBe(true);

    // Nothing arrives twice, however long we wait.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(messagesWithBody(first, body)).toHaveLength(1);
    expect(new Set(first.map((t) => t.txnId)).size).toBe(first.length);

    // Every handled transaction id is in the bucket.
    const keys = await (await openTxnStore(endpoint.bus)).keys();
    expect(keys.length).toBeGreaterThanOrEqual(first.length);
    deliveredTxnId = delivered.txnId;
    deliveredBody = { events: first.find((t) => t.txnId === delivered.txnId)?.events ?? [] };
  });

  it("Matrix AS - a restarted endpoint answers a replayed transaction from the bucket without handling it", async () => {
    if (synapse === undefined || endpoint === undefined || deliveredTxnId === "") return;
    await endpoint.server.close();
    await endpoint.bus.close();
    endpoint = await startEndpoint(second);

    const replay = await request(`${endpoint.server.url}/_matrix/app/v1/transactions/${deliveredTxnId}`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${registration.hs_token}` },
      body: JSON.stringify(deliveredBody),
    });
    expect(replay.statusCode).toBe(200);
    expect(await replay.body.json()).toEqual({});
    expect(second).toHaveLength(0);

    // …and Synapse's next transaction, with a new id, is handled by the new instance.
    const body = `Nach dem Neustart ${randomUUID()}`;
    await matrix(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${randomUUID()}`,
      userToken,
      { msgtype: "m.text", body },
    );
    await eventually(
      () => Promise.resolve(messagesWithBody(second, body).length > 0 ? true : undefined),
      30_000,
      "the message after the restart",
    );
    expect(second.map((t) => t.txnId)).not.toContain(deliveredTxnId);
    expect(txnBucket).toBe("fedgate_matrix_txns");
  });
});
