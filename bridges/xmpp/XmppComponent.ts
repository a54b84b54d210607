/**
 * A typed face for @xmpp/component (XEP-0114), which is CommonJS without type declarations. It connects,
 * reconnects with backoff when the server goes away, and turns the server's refusals into errors that say
 * why (wrong secret, unknown domain).
 */
import { createRequire } from "node:module";
import type { Logger } from "pino";
import { FedgateError, PermanentError, TransientError } from "../../schemas/contract/errors.js";
import { NS } from "./namespaces.js";
import { withoutXmlForbidden } from "../kit/cleanText.js";

/** The parts of an @xmpp/xml element the bridge uses. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string | undefined>;
  children: (XmlElement | string)[];
  is(name: string, xmlns?: string): boolean;
  getChild(name: string, xmlns?: string): XmlElement | undefined;
  getChildren(name: string, xmlns?: string): XmlElement[];
  getChildText(name: string, xmlns?: string): string | null;
  text(): string;
  toString(): string;
}

export type XmlChild = XmlElement | string | undefined;
export type Xml = (
  name: string,
  attrs?: Record<string, string | undefined>,
  ...children: XmlChild[]
) => XmlElement;

interface ComponentEntity {
  status: string;
  /** The open socket, while there is one. */
  socket: { destroy(): void } | null;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  disconnect(): Promise<unknown>;
  send(element: XmlElement): Promise<void>;
  /** Writes serialised XML to the socket: every stanza and the stream's own elements pass through it. */
  write(text: string): Promise<void>;
  on(event: "stanza", listener: (element: XmlElement) => void): void;
  on(event: "online" | "offline" | "disconnect", listener: () => void): void;
  on(event: "error", listener: (error: Error & { condition?: string }) => void): void;
  on(event: "status", listener: (status: string) => void): void;
  reconnect: { delay: number; stop(): void };
  iqCaller: { request(element: XmlElement, timeoutMs?: number): Promise<XmlElement> };
  iqCallee: {
    get(
      xmlns: string,
      name: string,
      handler: (context: { stanza: XmlElement }) => Promise<XmlElement | undefined>,
    ): void;
  };
}

/**
 * Answers an iq get: the payload of the result, an `error` element for an error reply, or undefined for
 * service-unavailable.
 */
export type IqGetHandler = (stanza: XmlElement) => Promise<XmlElement | undefined>;

const require = createRequire(import.meta.url);
const library = require("@xmpp/component") as {
  component(options: { service: string; domain: string; password: string }): ComponentEntity;
  xml: Xml;
};

/** Builds stanzas with the library's own element class, so the component serialises them as it expects. */
export const xml: Xml = library.xml;

export interface XmppComponentOptions {
  service: string;
  domain: string;
  secret: string;
  log: Logger;
}

/** What a refusal by the server means, for the log line an operator reads. */
function explain(error: Error & { condition?: string }, options: XmppComponentOptions): string {
  switch (error.condition) {
    case "not-authorized":
      return `the server refused the component secret for ${options.domain}`;
    case "host-unknown":
    case "improper-addressing":
      return `the server does not know the component domain ${options.domain}; add it as a Component in the server's configuration`;
    case "conflict":
      return `another process is already connected as ${options.domain}`;
    default:
      return error.message;
  }
}

export class XmppComponent {
  private readonly entity: ComponentEntity;
  private readonly listeners: ((element: XmlElement) => void)[] = [];
  private onlineListeners: (() => void)[] = [];
  private disconnectListeners: (() => void)[] = [];

  constructor(private readonly options: XmppComponentOptions) {
    this.entity = library.component({
      service: options.service,
      domain: options.domain,
      password: options.secret,
    });
    this.entity.reconnect.delay = 1000;
    // The one place every stanza passes, whoever built it (the bridge, the iq caller, the answers to iqs):
    // no text from another network can break the stream with a character XML forbids.
    const write = this.entity.write.bind(this.entity);
    this.entity.write = (text) => write(withoutXmlForbidden(text, "\uFFFD"));
    this.entity.on("stanza", (element) => {
      for (const listener of this.listeners) listener(element);
    });
    this.entity.on("online", () => {
      options.log.info({ domain: options.domain }, "connected to the XMPP server as a component");
      for (const listener of this.onlineListeners) listener();
    });
    this.entity.on("offline", () => options.log.warn({ domain: options.domain }, "XMPP component offline"));
    this.entity.on("disconnect", () => {
      for (const listener of this.disconnectListeners) listener();
    });
    this.entity.on("error", (error) =>
      options.log.error(
        { condition: error.condition, reason: explain(error, options) },
        "XMPP component error",
      ),
    );
  }

  /** Called for every stanza the server routes to the component's domain. */
  onStanza(listener: (element: XmlElement) => void): void {
    this.listeners.push(listener);
  }

  /** Called after every (re)connection: rooms must be joined again. */
  onOnline(listener: () => void): void {
    this.onlineListeners.push(listener);
  }

  /** Called whenever the connection is lost; the component reconnects by itself. */
  onDisconnect(listener: () => void): void {
    this.disconnectListeners.push(listener);
  }

  /**
   * An XMPP ping (XEP-0199) to `to`, a host of the component's server: resolves on any answer, an error reply
   * included (a host without ping support still answered), and rejects when the stream is not up or nothing
   * came back within timeoutMs.
   */
  async ping(to: string, timeoutMs: number): Promise<void> {
    if (this.entity.status !== "online")
      throw new TransientError("FG_PEER_UNAVAILABLE", `the XMPP stream is ${this.entity.status}`);
    try {
      await this.entity.iqCaller.request(
        xml("iq", { type: "get", to }, xml("ping", { xmlns: NS.ping })),
        timeoutMs,
      );
    } catch (cause) {
      if (cause instanceof Error && cause.name === "StanzaError") return;
      throw new TransientError("FG_PEER_UNAVAILABLE", `no answer to an XMPP ping: ${String(cause)}`, {
        cause,
      });
    }
  }

  /**
   * A MUC self-ping (XEP-0410): whether `occupant` (room/nick) is still `from`'s in its room. An error saying
   * the sender is not an occupant (not-acceptable) or the nick is not there (item-not-found) is "gone"; any
   * other answer (a result, or an error from the occupant itself for not knowing pings) is "joined"; no answer
   * in time says nothing either way.
   */
  async selfPing(from: string, occupant: string, timeoutMs: number): Promise<"joined" | "gone" | "unknown"> {
    if (this.entity.status !== "online") return "unknown";
    try {
      await this.entity.iqCaller.request(
        xml("iq", { type: "get", from, to: occupant }, xml("ping", { xmlns: NS.ping })),
        timeoutMs,
      );
      return "joined";
    } catch (cause) {
      if (!(cause instanceof Error) || cause.name !== "StanzaError") return "unknown";
      const condition = (cause as Error & { condition?: string }).condition;
      return condition === "not-acceptable" || condition === "item-not-found" ? "gone" : "joined";
    }
  }

  /**
   * Drops the connection to a server that stopped answering, so that the library connects again. Closing
   * politely waits for the frozen server (up to the library's timeout), so the socket is destroyed after it.
   * A connection still being opened is dropped too: a frozen server accepts TCP connections (the kernel does)
   * but never opens the stream, and the library would wait on it for good.
   */
  async reconnect(): Promise<void> {
    const socket = this.entity.socket;
    if (socket === null) return;
    await this.entity.disconnect().catch(() => undefined);
    socket.destroy();
  }

  /** Answers iq gets for one payload. The library answers service-unavailable to any other get or set. */
  onGet(xmlns: string, name: string, handler: IqGetHandler): void {
    this.entity.iqCallee.get(xmlns, name, async ({ stanza }) => {
      try {
        return await handler(stanza);
      } catch (error) {
        this.options.log.warn({ err: error, from: stanza.attrs["from"] }, "cannot answer an iq");
        return xml("error", { type: "wait" }, xml("internal-server-error", { xmlns: NS.stanzas }));
      }
    });
  }

  /** Connects; a refusal that retrying cannot fix (secret, domain) is a PermanentError. */
  async start(): Promise<void> {
    try {
      await this.entity.start();
    } catch (cause) {
      const error = cause as Error & { condition?: string };
      const reason = explain(error, this.options);
      if (error.condition !== undefined) {
        this.entity.reconnect.stop();
        throw new PermanentError("FG_PEER_REFUSED", `XMPP server ${this.options.service}: ${reason}`, {
          cause,
        });
      }
      throw new TransientError(
        "FG_PEER_UNAVAILABLE",
        `cannot reach XMPP server ${this.options.service}: ${reason}`,
        {
          cause,
        },
      );
    }
  }

  async send(element: XmlElement): Promise<void> {
    try {
      await this.entity.send(element);
    } catch (cause) {
      if (cause instanceof FedgateError) throw cause;
      throw new TransientError("FG_PEER_UNAVAILABLE", `cannot send to the XMPP server: ${String(cause)}`, {
        cause,
      });
    }
  }

  /** Sends an iq and resolves with the server's result; an error reply or no reply in time rejects. */
  async request(iq: XmlElement, timeoutMs = 30_000): Promise<XmlElement> {
    try {
      return await this.entity.iqCaller.request(iq, timeoutMs);
    } catch (cause) {
      throw new TransientError("FG_PEER_UNAVAILABLE", `XMPP request failed: ${String(cause)}`, { cause });
    }
  }

  async stop(): Promise<void> {
    this.entity.reconnect.stop();
    await this.entity.stop().catch(() => undefined);
  }
}
