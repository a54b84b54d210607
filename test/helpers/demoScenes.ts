/** For tests that run the whole demo federation: whether this machine can, and a Tchap official's client. */
import { request } from "undici";
import { createClient, type MatrixClient as JsClient } from "matrix-js-sdk";
import type { AuditRecord } from "../../schemas/types.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { subjects } from "../../schemas/contract/subjects.js";
import type { DemoDescription, DemoGateway } from "../harness/demo/demoFederation.js";
import type { DemoAccount } from "../harness/demo/demoParts.js";
import type { Logger } from "../../gateway/platform/log.js";
import { auditRecordsIn } from "./fixtures.js";
import { Officer } from "./stashcatScenes.js";
import { encryptingClient } from "./encryptingClient.js";
import { startNatsOrSkip } from "./nats.js";
import { startProsodyOrSkip } from "./prosody.js";
import { startSynapseOrSkip } from "./synapse.js";

/**
 * Whether nats-server, Prosody and Synapse can run here: the demo installs and starts its own servers; these
 * probes only find out whether this machine can.
 */
export async function demoServersAvailable(): Promise<boolean> {
  const nats = await startNatsOrSkip();
  const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
  const synapse = prosody === undefined ? undefined : await startSynapseOrSkip();
  await nats?.stop();
  await prosody?.stop();
  await synapse?.stop();
  return synapse !== undefined;
}

export type MatrixCall = (
  method: "GET" | "PUT",
  path: string,
  body?: unknown,
) => Promise<Record<string, unknown>>;

/** Logs a demo account into the demo's Synapse and returns a client-server API caller. */
export async function matrixLogin(server: string, user: string, password: string): Promise<MatrixCall> {
  const login = await request(`${server}/_matrix/client/v3/login`, {
    method: "POST",
    body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user }, password }),
  });
  const { access_token: token } = (await login.body.json()) as { access_token: string };
  return async (method, path, body) => {
    const response = await request(`${server}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
      body: body === undefined ? null : JSON.stringify(body),
    });
    return (await response.body.json()) as Record<string, unknown>;
  };
}

/**
 * The demo's Tchap official with a client that encrypts, as Element does: matrix-js-sdk with its Rust crypto
 * (keys in memory; fake-indexeddb stands in for the browser's store), logged in with the printed password as a
 * new device, its keys uploaded and its first sync done. Call stopClient() when done.
 */
export async function tchapOfficialClient(account: DemoAccount): Promise<JsClient> {
  const login = createClient({ baseUrl: account.server });
  const {
    access_token: accessToken,
    device_id: deviceId,
    user_id: userId,
  } = await login.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user: account.user },
    password: account.password,
  });
  return encryptingClient({ baseUrl: account.server, accessToken, deviceId, userId });
}

/** The decrypted text messages of a room as a client sees them, with who sent each and how it travelled. */
export function roomTexts(
  client: JsClient,
  room: string,
): { sender: string; body: string; encrypted: boolean }[] {
  return (client.getRoom(room)?.getLiveTimeline().getEvents() ?? [])
    .filter((e) => e.getType() === "m.room.message")
    .map((e) => ({
      sender: e.getSender() ?? "",
      body: String(e.getContent()["body"] ?? ""),
      encrypted: e.getWireType() === "m.room.encrypted",
    }));
}

/** The demo's Stashcat officer, logged in with the account the demo printed. */
export async function demoOfficer(description: DemoDescription, log: Logger): Promise<Officer> {
  const account = description.accounts.find((a) => a.network === "stashcat");
  if (account?.encryptionPassword === undefined) throw new Error("the demo printed no Stashcat account");
  return Officer.loginTo(
    account.server,
    { email: account.user, password: account.password, encryptionPassword: account.encryptionPassword },
    log,
  );
}

/** The demo gateway whose bridges serve `network`. */
export function demoGateway(description: DemoDescription, network: string): DemoGateway {
  const gateway = description.gateways.find((g) => g.networks.includes(network));
  if (gateway === undefined) throw new Error(`no demo gateway serves ${network}`);
  return gateway;
}

/** The native conversation of `network` in the demo's linked room. */
export function demoConversation(description: DemoDescription, network: string): string {
  const endpoint = demoGateway(description, network)
    .links.flatMap((l) => l.endpoints)
    .find((e) => e.network === network);
  if (endpoint === undefined) throw new Error(`the demo link has no ${network} conversation`);
  return endpoint.conversation;
}

/** Follows a demo gateway's audit trail: every decision it made, as it makes them. */
export async function followAudit(
  gateway: DemoGateway,
  log: Logger,
): Promise<{ records: AuditRecord[]; close(): Promise<void> }> {
  // The demo's servers take local clients without credentials, as the gateway's own user.
  const bus = await JetStreamBus.connect({ servers: gateway.nats.url, log });
  const records: AuditRecord[] = [];
  await bus.follow("FEDGATE_AUDIT", subjects.auditAll, "start", (m) =>
    records.push(...auditRecordsIn(m.data)),
  );
  return { records, close: () => bus.close() };
}
