/**
 * A real Prosody per test file (see servers.ts for when it is skipped), and typed XMPP clients that log in
 * to it or to any other local XMPP server.
 */
import { LocalProsody, type ProsodyOptions } from "../harness/servers/xmpp/LocalProsody.js";
import type { Xml, XmlElement } from "../../bridges/xmpp/XmppComponent.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { buckets } from "../../schemas/contract/topology.js";
import { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import { startOrSkip } from "./servers.js";

export function startProsodyOrSkip(options?: ProsodyOptions): Promise<LocalProsody | undefined> {
  return startOrSkip("prosody", () => LocalProsody.start(options));
}

/** XMPP elements as the bridge sees them; the client library builds the same shape. */
export type Element = XmlElement;
export type { Xml };

type Authenticate = (credentials: { username: string; password: string }, mechanism: string) => Promise<void>;

export interface XmppClient {
  status: string;
  start(): Promise<{ toString(): string }>;
  stop(): Promise<unknown>;
  send(element: Element): Promise<void>;
  on(event: "stanza", listener: (element: Element) => void): void;
  on(event: "error", listener: (error: Error & { condition?: string }) => void): void;
  on(event: "online" | "offline", listener: () => void): void;
  removeListener(event: "stanza", listener: (element: Element) => void): void;
  iqCaller: { request(element: Element, timeoutMs?: number): Promise<Element> };
  reconnect: { stop(): void };
}

interface ClientModule {
  client(options: {
    service: string;
    domain: string;
    resource?: string;
    username?: string;
    credentials?: (authenticate: Authenticate, mechanisms: string[]) => Promise<void>;
  }): XmppClient;
  xml: Xml;
}

// A non-literal specifier keeps TypeScript from looking for declarations the package does not have.
const clientModuleName: string = "@xmpp/client";
const clientModule = (await import(clientModuleName)) as ClientModule;

/** Builds stanzas with @xmpp/client's own element class. */
export const xml: Xml = clientModule.xml;

/**
 * A client for localpart@domain, not yet started. It logs in with SASL PLAIN: xmpp.js 0.14 never picks
 * PLAIN on its own over an unencrypted connection (and would use SCRAM-SHA-1, which costs seconds of
 * CPU), so the mechanism is chosen here. Errors are collected rather than thrown as unhandled events.
 */
export function xmppClient(
  prosody: Pick<LocalProsody, "c2sUrl" | "domain">,
  localpart: string,
  password: string,
  resource = "test",
): XmppClient & { errors: Error[] } {
  const entity = clientModule.client({
    service: prosody.c2sUrl,
    domain: prosody.domain,
    resource,
    username: localpart,
    credentials: (authenticate) => authenticate({ username: localpart, password }, "PLAIN"),
  });
  const errors: Error[] = [];
  entity.on("error", (error) => errors.push(error));
  return Object.assign(entity, { errors });
}

/** Stops a client if it is still connected, without waiting forever on a server that is gone. */
export async function stopClient(entity: XmppClient | undefined): Promise<void> {
  if (entity === undefined) return;
  entity.reconnect.stop();
  if (entity.status === "offline") return;
  await Promise.race([entity.stop().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
}

/** Links a room of this Prosody with a Tchap room, as an agency's admin would, straight in the link store. */
export async function linkRoom(
  bus: Bus,
  id: string,
  room: string,
  tchapRoom = `!${id}:tchap.localhost`,
): Promise<void> {
  const links = new LinkStore(await bus.keyValue(buckets.links));
  await links.start();
  try {
    await links.create({
      id,
      endpoints: [
        { network: "xmpp", instance: "bpol", conversation: room, agency: "bpol" },
        { network: "matrix", instance: "tchap", conversation: tchapRoom, agency: "dinum-mi" },
      ],
    });
  } finally {
    links.stop();
  }
}
