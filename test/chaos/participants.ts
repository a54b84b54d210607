/**
 * The people at each end of the chaos suite's conversation, each on their own network's client API, as a
 * person's client would be: a Bundespolizei officer in the XMPP room, a Tchap official in the Matrix room,
 * a Lower Saxony officer in the Stashcat channel. Each writes in the linked conversation and reads it from
 * the server's own record of it (the room's archive, the room's timeline, the channel's messages): along
 * the way after the last message read, for the times, and at the end back from the conversation's end, as a
 * person scrolling up sees it, for the count. What is counted is what the far person sees, doubles included,
 * whatever their connection went through.
 */
import { createHash } from "node:crypto";
import { decryptText } from "../../bridges/stashcat/crypto.js";
import { createLogger } from "../../gateway/platform/log.js";
import { matrixLogin, type MatrixCall } from "../helpers/demoScenes.js";
import { stopClient, xml, xmppClient, type Element, type XmppClient } from "../helpers/prosody.js";
import { Officer } from "../helpers/stashcatScenes.js";
import { joinRoom } from "../helpers/xmppScenes.js";

export type Network = "xmpp" | "matrix" | "stashcat";
export const networks: readonly Network[] = ["xmpp", "matrix", "stashcat"];

/** A message of the conversation as the participant's client reads it. */
export interface Read {
  /** The server's id of it: two copies of one text have two ids. */
  id: string;
  body: string;
  /** When the server stored it, by the server's clock, where the read says (reading back does). */
  storedAt?: number;
}

export interface Participant {
  readonly network: Network;
  /** Writes `text` in the conversation; resolves once the server has stored it, rejects when unsure. */
  send(text: string): Promise<void>;
  /** The conversation's messages stored since the last call (the first call starts from now), oldest first. */
  readNew(): Promise<Read[]>;
  /**
   * The conversation's last `count` messages, read back from its end as a person scrolling up sees them,
   * oldest first: what the count at the end rests on, whatever the reading along the way missed.
   */
  history(count: number): Promise<Read[]>;
  /** Resolves once the client can write again after its server came back. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** What a demo account is, as demo.json lists it. */
export interface Account {
  user: string;
  password: string;
  encryptionPassword?: string;
  server: string;
}

const NS = {
  mam: "urn:xmpp:mam:2",
  rsm: "http://jabber.org/protocol/rsm",
  delay: "urn:xmpp:delay",
  forward: "urn:xmpp:forward:0",
} as const;

/** Archive pages: large enough that a backlog drains in a few queries. */
const PAGE = 100;

/**
 * An officer in the XMPP room. A message counts as sent once the room echoes it back; a lost connection
 * (the server restarted) is re-established and the room joined again. The room is read from its archive
 * (XEP-0313), page by page after the last archive id read.
 */
export class XmppParticipant implements Participant {
  readonly network = "xmpp";
  private readonly echoes = new Map<string, () => void>();
  private readonly pages = new Map<string, Read[]>();
  private cursor: string | undefined;
  private joined: Promise<void>;
  private closing = false;

  private constructor(
    private readonly client: XmppClient,
    private readonly room: string,
    private readonly nick: string,
  ) {
    this.joined = Promise.resolve();
    client.on("stanza", (stanza) => this.onStanza(stanza));
  }

  /** Logs `account` in to the server at `c2sUrl` and joins `room` as `nick`. */
  static async join(c2sUrl: string, account: Account, room: string, nick: string): Promise<XmppParticipant> {
    const [localpart = "", domain = ""] = account.user.split("@");
    const client = xmppClient({ c2sUrl, domain }, localpart, account.password, "chaos");
    const participant = new XmppParticipant(client, room, nick);
    await client.start();
    participant.joined = joinRoom(client, room, nick);
    await participant.joined;
    // After its server comes back, the client reconnects on its own (xmpp.js's reconnect) and rejoins here.
    client.on("online", () => {
      if (participant.closing) return;
      participant.joined = joinRoom(client, room, nick, 20_000);
      participant.joined.catch(() => undefined);
    });
    await participant.readNew();
    return participant;
  }

  private onStanza(stanza: Element): void {
    if (!stanza.is("message")) return;
    const result = stanza.getChild("result", NS.mam);
    if (result !== undefined) {
      const page = this.pages.get(result.attrs["queryid"] ?? "");
      const original = result.getChild("forwarded", NS.forward)?.getChild("message");
      const body = original?.getChildText("body");
      const stamp = result.getChild("forwarded", NS.forward)?.getChild("delay", NS.delay)?.attrs["stamp"];
      if (page !== undefined && typeof body === "string")
        page.push({
          id: result.attrs["id"] ?? "",
          body,
          ...(stamp === undefined ? {} : { storedAt: Date.parse(stamp) }),
        });
      return;
    }
    // The room's echo of a message of ours; a join's history replay carries a delay and is not one.
    const body = stanza.getChildText("body");
    if (stanza.attrs["from"] !== `${this.room}/${this.nick}` || body === null) return;
    if (stanza.getChild("delay", NS.delay) !== undefined) return;
    this.echoes.get(body)?.();
  }

  async send(text: string): Promise<void> {
    await this.joined;
    const echoed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.echoes.delete(text);
        reject(new Error(`the room did not echo "${text}" within 15 s`));
      }, 15_000);
      this.echoes.set(text, () => {
        clearTimeout(timer);
        this.echoes.delete(text);
        resolve();
      });
    });
    echoed.catch(() => undefined);
    await this.client.send(xml("message", { to: this.room, type: "groupchat" }, xml("body", {}, text)));
    await echoed;
  }

  /** One archive query with the result set `rsm`: its page, and where the page starts and ends. */
  private async query(
    rsm: Element,
  ): Promise<{ page: Read[]; first: string | undefined; last: string | undefined; complete: boolean }> {
    const queryid = `chaos-${Math.random().toString(36).slice(2)}`;
    const page: Read[] = [];
    this.pages.set(queryid, page);
    try {
      const answer = await this.client.iqCaller.request(
        xml("iq", { type: "set", to: this.room }, xml("query", { xmlns: NS.mam, queryid }, rsm)),
        10_000,
      );
      const fin = answer.getChild("fin", NS.mam);
      const set = fin?.getChild("set", NS.rsm);
      return {
        page,
        first: set?.getChildText("first") ?? undefined,
        last: set?.getChildText("last") ?? undefined,
        complete: fin?.attrs["complete"] === "true",
      };
    } finally {
      this.pages.delete(queryid);
    }
  }

  async readNew(): Promise<Read[]> {
    await this.joined;
    if (this.cursor === undefined) {
      // Where the archive ends now: the last page's last id.
      const { last } = await this.query(
        xml("set", { xmlns: NS.rsm }, xml("max", {}, "1"), xml("before", {})),
      );
      this.cursor = last ?? "";
      return [];
    }
    const read: Read[] = [];
    for (;;) {
      const after = this.cursor === "" ? [] : [xml("after", {}, this.cursor)];
      const { page, last, complete } = await this.query(
        xml("set", { xmlns: NS.rsm }, xml("max", {}, String(PAGE)), ...after),
      );
      read.push(...page);
      if (last !== undefined) this.cursor = last;
      if (complete || page.length === 0 || last === undefined) return read;
    }
  }

  async history(count: number): Promise<Read[]> {
    await this.joined;
    const pages: Read[][] = [];
    let before = "";
    for (let read = 0; read < count;) {
      const { page, first, complete } = await this.query(
        xml("set", { xmlns: NS.rsm }, xml("max", {}, String(PAGE)), xml("before", {}, before)),
      );
      pages.unshift(page);
      read += page.length;
      if (complete || page.length === 0 || first === undefined) break;
      before = first;
    }
    return pages.flat().slice(-count);
  }

  async ready(): Promise<void> {
    for (;;) {
      await this.joined.catch(() => undefined);
      if (this.client.status === "online") {
        try {
          await this.joined;
          return;
        } catch {
          // The join failed while the server was still coming up; the next "online" joins again.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await stopClient(this.client);
  }
}

/** A Matrix user in the linked room: writes with a transaction id per text, reads the room's timeline. */
export class MatrixParticipant implements Participant {
  readonly network = "matrix";
  private cursor = "";

  private constructor(
    private readonly call: MatrixCall,
    private readonly room: string,
  ) {}

  static async login(account: Account, room: string): Promise<MatrixParticipant> {
    const participant = new MatrixParticipant(
      await matrixLogin(account.server, account.user, account.password),
      room,
    );
    const sync = await participant.call("GET", `/_matrix/client/v3/sync?timeout=0&filter=${filterOf(1)}`);
    if (typeof sync["next_batch"] !== "string") throw new Error(`no sync token: ${JSON.stringify(sync)}`);
    participant.cursor = sync["next_batch"];
    return participant;
  }

  private get roomPath(): string {
    return `/_matrix/client/v3/rooms/${encodeURIComponent(this.room)}`;
  }

  async send(text: string): Promise<void> {
    // The same text keeps its transaction id, so a retry after an unclear failure is stored once.
    const txnId = createHash("sha256").update(text).digest("hex").slice(0, 32);
    const answer = await this.call("PUT", `${this.roomPath}/send/m.room.message/${txnId}`, {
      msgtype: "m.text",
      body: text,
    });
    if (typeof answer["event_id"] !== "string") throw new Error(`send refused: ${JSON.stringify(answer)}`);
  }

  async readNew(): Promise<Read[]> {
    const read: Read[] = [];
    for (;;) {
      const filter = encodeURIComponent(JSON.stringify({ types: ["m.room.message"] }));
      const answer = await this.call(
        "GET",
        `${this.roomPath}/messages?dir=f&limit=${PAGE}&from=${encodeURIComponent(this.cursor)}&filter=${filter}`,
      );
      const chunk = answer["chunk"];
      if (!Array.isArray(chunk)) throw new Error(`no timeline: ${JSON.stringify(answer)}`);
      for (const event of chunk as { event_id?: unknown; content?: { body?: unknown } }[]) {
        if (typeof event.event_id === "string" && typeof event.content?.body === "string")
          read.push({ id: event.event_id, body: event.content.body });
      }
      const end = answer["end"];
      if (typeof end === "string") this.cursor = end;
      if (typeof end !== "string" || chunk.length === 0) return read;
    }
  }

  async history(count: number): Promise<Read[]> {
    // Without a token, the room's end: where a person scrolling up starts.
    let from: string | undefined;
    const read: Read[] = [];
    while (read.length < count) {
      const filter = encodeURIComponent(JSON.stringify({ types: ["m.room.message"] }));
      const answer = await this.call(
        "GET",
        `${this.roomPath}/messages?dir=b&limit=${PAGE}&filter=${filter}` +
          (from === undefined ? "" : `&from=${encodeURIComponent(from)}`),
      );
      const chunk = answer["chunk"];
      if (!Array.isArray(chunk)) throw new Error(`no timeline: ${JSON.stringify(answer)}`);
      for (const event of chunk as Record<string, unknown>[]) {
        const body = (event["content"] as { body?: unknown } | undefined)?.body;
        const ts = event["origin_server_ts"];
        if (typeof event["event_id"] === "string" && typeof body === "string")
          read.push({ id: event["event_id"], body, ...(typeof ts === "number" ? { storedAt: ts } : {}) });
      }
      const end = answer["end"];
      if (typeof end !== "string" || chunk.length === 0) break;
      from = end;
    }
    return read.slice(0, count).reverse();
  }

  async ready(): Promise<void> {
    for (;;) {
      try {
        const answer = await this.call("GET", "/_matrix/client/v3/account/whoami");
        if (typeof answer["user_id"] === "string") return;
      } catch {
        // Synapse is not back yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async close(): Promise<void> {
    // Nothing held open: every call is a request of its own.
  }
}

function filterOf(timelineLimit: number): string {
  return encodeURIComponent(JSON.stringify({ room: { timeline: { limit: timelineLimit } } }));
}

/** A Stashcat officer in the linked channel: writes encrypted, reads the channel's messages after the last. */
export class StashcatParticipant implements Participant {
  readonly network = "stashcat";
  private cursor = 0;

  private constructor(
    private readonly officer: Officer,
    private readonly chat: { type: "channel"; id: number },
  ) {}

  static async login(apiUrl: string, account: Account, channel: number): Promise<StashcatParticipant> {
    if (account.encryptionPassword === undefined)
      throw new Error("a Stashcat account needs its key password");
    const officer = await Officer.loginTo(
      apiUrl,
      { email: account.user, password: account.password, encryptionPassword: account.encryptionPassword },
      createLogger("silent"),
    );
    const participant = new StashcatParticipant(officer, { type: "channel", id: channel });
    const latest = await officer.client.messages(participant.chat, { limit: 1 });
    participant.cursor = latest.at(-1)?.id ?? 0;
    return participant;
  }

  async send(text: string): Promise<void> {
    await this.officer.say(this.chat, text);
  }

  async readNew(): Promise<Read[]> {
    const key = await this.officer.chatKey(this.chat);
    const read: Read[] = [];
    for (;;) {
      const page = await this.officer.client.messages(this.chat, {
        limit: PAGE,
        afterMessageId: this.cursor,
      });
      for (const message of page) {
        read.push({
          id: String(message.id),
          body: message.encrypted ? decryptText(message.text, message.iv ?? "", key) : message.text,
        });
        this.cursor = Math.max(this.cursor, message.id);
      }
      if (page.length < PAGE) return read;
    }
  }

  async history(count: number): Promise<Read[]> {
    const key = await this.officer.chatKey(this.chat);
    const read = new Map<number, Read>();
    for (let offset = 0; read.size < count; offset += PAGE) {
      const page = await this.officer.client.messages(this.chat, { limit: PAGE, offset });
      if (page.length === 0) break;
      for (const message of page)
        read.set(message.id, {
          id: String(message.id),
          body: message.encrypted ? decryptText(message.text, message.iv ?? "", key) : message.text,
          storedAt: message.time * 1000,
        });
    }
    return [...read]
      .sort(([a], [b]) => a - b)
      .slice(-count)
      .map(([, message]) => message);
  }

  async ready(): Promise<void> {
    for (;;) {
      try {
        await this.officer.client.messages(this.chat, { limit: 1 });
        return;
      } catch {
        // The server is not back yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async close(): Promise<void> {
    // Nothing held open: every call is a request of its own.
  }
}
