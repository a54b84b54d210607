/**
 * The scene the XMPP bridge's integration tests and benchmark share: officer Weber in a room of a local XMPP
 * server, Claire Martin (Ministère de l'Intérieur) writing from Tchap, and the bus in between.
 */
import { request } from "undici";
import type { XmppBridgeConfig } from "../../bridges/xmpp/config.types.js";
import { validateXmppConfig } from "../../bridges/xmpp/config.js";
import type { ConfigInput } from "../harness/configInput.js";
import type { LocalXmppServer } from "../harness/servers/xmpp/LocalXmppServer.js";
import { puppetJid } from "../../bridges/xmpp/puppetJid.js";
import { XmppBridge, type RunningXmppBridge } from "../../bridges/xmpp/XmppBridge.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { directConversation } from "../../schemas/contract/directConversations.js";
import { validateEvent } from "../../schemas/contract/schemas.js";
import { subjects } from "../../schemas/contract/subjects.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { UserRef } from "../../gateway/platform/stores/IdentityStore.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import type {
  AgencyRef,
  DeliveredMarking,
  Delivery,
  Endpoint,
  EventSender,
  NormalisedEvent,
} from "../../schemas/types.js";
import { eventually, matrixRoom } from "./fixtures.js";
import { NS } from "./xmppNamespaces.js";
import { linkRoom, stopClient, xml, xmppClient, type Element, type XmppClient } from "./prosody.js";

/** Claire Martin on Tchap: the person on the other side of every scene. */
export const claireOnTchap: UserRef = {
  network: "matrix",
  instance: "tchap",
  userId: "@claire.martin:tchap.localhost",
};
/** Claire as the sender of her events. */
export const claireAsSender: EventSender = { userId: claireOnTchap.userId, displayName: "Claire Martin" };
/** Claire's agency, as the core names it in what it delivers from her. */
export const claireAgency: AgencyRef = { id: "dinum-mi", name: "Ministère de l'Intérieur", country: "FR" };

/** The JID of Claire's puppet on the bridge's component domain. */
export function clairePuppet(componentDomain: string): string {
  return puppetJid(claireOnTchap.network, claireOnTchap.instance, claireOnTchap.userId, {
    domain: componentDomain,
  });
}

/** The XMPP room `room` of agency bpol, as a delivery's target. */
export function roomTarget(room: string): Endpoint {
  return { network: "xmpp", instance: "bpol", conversation: room, agency: "bpol", kind: "room" };
}

/** The XMPP side of the direct chat between the officer `officerJid` and `remote`, as a delivery's target. */
export function directWith(officerJid: string, remote: UserRef): Endpoint {
  return {
    network: "xmpp",
    instance: "bpol",
    conversation: directConversation(officerJid, remote),
    agency: "bpol",
    kind: "direct",
  };
}

/** The XMPP side of the direct chat between the officer `officerJid` and Claire, as a delivery's target. */
export function directWithClaire(officerJid: string): Endpoint {
  return directWith(officerJid, claireOnTchap);
}

/** The same direct chat as Tchap names it: from Claire's side. */
export function claireSideOfDirect(officerJid: string): string {
  return directConversation(claireOnTchap.userId, { network: "xmpp", instance: "bpol", userId: officerJid });
}

/** An event of Claire's; any field given here replaces the default. */
export type EventFromClaire = Partial<NormalisedEvent> & Pick<NormalisedEvent, "id" | "type">;

/** Publishes a delivery for bpol's XMPP bridge, as the core does. */
export function publishToXmpp(bus: Bus, delivery: Delivery): Promise<unknown> {
  return bus.publish(subjects.outbound("xmpp", "bpol"), encodeJson(delivery), { msgId: delivery.id });
}

/**
 * Publishes what the core delivers to `target` of an event Claire sent in `conversation` on Tchap (the room
 * linked with the XMPP room, unless told otherwise), with `marking` as the core resolved it. Returns the event.
 */
export async function deliverFromClaire(
  bus: Bus,
  target: Endpoint,
  event: EventFromClaire,
  options: { conversation?: string; marking?: DeliveredMarking } = {},
): Promise<NormalisedEvent> {
  const full: NormalisedEvent = {
    specVersion: "1",
    source: {
      network: "matrix",
      instance: "tchap",
      conversation: options.conversation ?? matrixRoom.conversation,
    },
    sender: claireAsSender,
    timestamp: new Date().toISOString(),
    ...event,
  };
  await publishToXmpp(bus, {
    specVersion: "1",
    id: `${full.id}.x`,
    event: full,
    target,
    senderAgency: claireAgency,
    ...(options.marking === undefined ? {} : { marking: options.marking }),
  });
  return full;
}

/** A bus with its streams and buckets, on which `room` is linked (as `linkId`) with a Tchap room. */
export async function linkedBus(
  natsUrl: string,
  log: Logger,
  room: string,
  linkId = "lage",
): Promise<JetStreamBus> {
  const bus = await JetStreamBus.connect({ servers: natsUrl, log });
  await bus.ensureTopology();
  await linkRoom(bus, linkId, room);
  return bus;
}

/**
 * Collects into `inbound` every event the bridges publish, from the stream's start, each checked against the
 * schema.
 */
export async function collectInbound(bus: Bus, inbound: NormalisedEvent[]): Promise<void> {
  await bus.follow("FEDGATE_INBOUND", subjects.inboundAll, "start", (m) =>
    inbound.push(validateEvent(JSON.parse(Buffer.from(m.data).toString()))),
  );
}

/** Starts bpol's XMPP bridge on a local server, with the server's config for it and `config` over that. */
export function startXmppBridge(
  bus: Bus,
  server: LocalXmppServer,
  log: Logger,
  config: ConfigInput<XmppBridgeConfig> = {},
): Promise<RunningXmppBridge> {
  return XmppBridge.start(
    bus,
    validateXmppConfig({ ...server.bridgeConfig(), ...config }),
    server.componentSecret,
    log,
  );
}

/** What a client hears: the messages it receives, and the room occupants (room/nick) present as it sees them. */
export interface Hearing {
  heard: Element[];
  present: Set<string>;
}

/** Keeps in `hearing` the messages `client` receives and the occupants it sees join and leave. */
function listenTo(client: XmppClient, hearing: Hearing): void {
  client.on("stanza", (stanza) => {
    if (stanza.is("message")) hearing.heard.push(stanza);
    if (!stanza.is("presence")) return;
    const from = String(stanza.attrs["from"]);
    if (stanza.attrs["type"] === "unavailable") hearing.present.delete(from);
    else if (stanza.attrs["type"] !== "error") hearing.present.add(from);
  });
}

/** Joins `room` as `nick` (XEP-0045); resolves once the room shows `nick` in it, fails if the room refuses. */
export function joinRoom(client: XmppClient, room: string, nick: string, timeoutMs = 10_000): Promise<void> {
  const occupant = `${room}/${nick}`;
  return new Promise((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer);
      client.removeListener("stanza", onStanza);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onStanza = (stanza: Element): void => {
      if (!stanza.is("presence") || stanza.attrs["from"] !== occupant) return;
      if (stanza.attrs["type"] === "error") done(new Error(`${room} refused ${nick}: ${stanza.toString()}`));
      else if (stanza.attrs["type"] !== "unavailable") done();
    };
    const timer = setTimeout(
      () => done(new Error(`timed out after ${timeoutMs} ms waiting for ${nick} in ${room}`)),
      timeoutMs,
    );
    client.on("stanza", onStanza);
    client.send(xml("presence", { to: occupant }, xml("x", { xmlns: NS.muc }))).catch(done);
  });
}

/** Officer Weber's account and nickname. */
const weber = { localpart: "weber", password: "pw-weber", nick: "Weber" };

/** Creates officer Weber's account on `server` (or resets it); returns the bare JID. */
export function addWeber(server: Pick<LocalXmppServer, "addUser">): Promise<string> {
  return server.addUser(weber.localpart, weber.password);
}

/**
 * Logs officer Weber in (see addWeber), keeping what the client hears in `hearing`, and joins `room`. With
 * `available`, the client first says it is available, as a client does for its direct chats: a message to
 * the bare JID reaches only available sessions.
 */
export async function weberInRoom(
  server: Pick<LocalXmppServer, "c2sUrl" | "domain">,
  room: string,
  hearing: Hearing,
  options: { available?: boolean } = {},
): Promise<XmppClient & { errors: Error[] }> {
  const client = xmppClient(server, weber.localpart, weber.password);
  listenTo(client, hearing);
  try {
    await client.start();
    if (options.available === true) await client.send(xml("presence"));
    await joinRoom(client, room, weber.nick);
  } catch (error) {
    // The caller never gets this client, so nothing else would close it.
    await stopClient(client);
    throw error;
  }
  return client;
}

/** Waits until `present` shows the bridge's bot in `room`. */
export function bridgeInRoom(
  present: ReadonlySet<string>,
  room: string,
  timeoutMs = 10_000,
  what = "the bridge in the room",
): Promise<true> {
  return eventually(() => (present.has(`${room}/fedgate`) ? true : undefined), timeoutMs, what);
}

/** A room linked on the bus and served by bpol's bridge, with officer Weber and the bridge's bot in it. */
export interface BridgedRoom {
  bus: JetStreamBus;
  bridge: RunningXmppBridge;
  officer: XmppClient & { errors: Error[] };
  /** Weber's bare JID. */
  officerJid: string;
}

/**
 * Sets a bridged room up, in this order: links `room` on a new bus, collects what the bridges publish into
 * `inbound`, starts the bridge (`bridgeConfig` over the server's config), creates Weber's account, has him
 * join (recording into `heard` and `present`; see weberInRoom for `available`), and waits for the bridge's
 * bot in the room.
 */
export async function bridgedRoom(
  setting: Hearing & {
    natsUrl: string;
    server: LocalXmppServer;
    log: Logger;
    room: string;
    inbound: NormalisedEvent[];
  },
  bridgeConfig: ConfigInput<XmppBridgeConfig> = {},
  options: { available?: boolean } = {},
): Promise<BridgedRoom> {
  const { server, log, room } = setting;
  const bus = await linkedBus(setting.natsUrl, log, room);
  await collectInbound(bus, setting.inbound);
  const bridge = await startXmppBridge(bus, server, log, bridgeConfig);
  const officerJid = await addWeber(server);
  const officer = await weberInRoom(server, room, setting, options);
  await bridgeInRoom(setting.present, room);
  return { bus, bridge, officer, officerJid };
}

/**
 * Uploads a file as XMPP clients do (XEP-0363): a slot from the upload service `service`, then a PUT with the
 * headers the slot names. Returns the PUT's status and the URL the file is then served at.
 */
export async function uploadAsClient(
  client: XmppClient,
  service: string,
  file: { name: string; bytes: Uint8Array; type: string },
): Promise<{ status: number; url: string }> {
  const reply = await client.iqCaller.request(
    xml(
      "iq",
      { type: "get", to: service },
      xml("request", {
        xmlns: NS.upload,
        filename: file.name,
        size: String(file.bytes.length),
        "content-type": file.type,
      }),
    ),
  );
  const slot = reply.getChild("slot", NS.upload);
  const put = slot?.getChild("put");
  const headers: Record<string, string> = { "content-type": file.type };
  for (const header of put?.getChildren("header") ?? []) headers[header.attrs["name"] ?? ""] = header.text();
  const response = await request(put?.attrs["url"] ?? "", { method: "PUT", headers, body: file.bytes });
  await response.body.dump();
  return { status: response.statusCode, url: slot?.getChild("get")?.attrs["url"] ?? "" };
}
