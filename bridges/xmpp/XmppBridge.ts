/**
 * The XMPP bridge: an external component (XEP-0114) on its own domain. Its bot listens in every linked group
 * chat (XEP-0045) and publishes what native occupants write; each remote person speaks through a puppet JID
 * on the bridge domain, with the nickname "Name (Agency)".
 */
import { createHash, randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Delivery } from "../../schemas/types.js";
import type { Bus } from "../../gateway/bus/Bus.js";
import { KeyedSequencer } from "../../gateway/bus/KeyedSequencer.js";
import { buckets } from "../../gateway/bus/topology.js";
import { FedgateError, PermanentError } from "../../gateway/errors.js";
import { decodeJson, encodeJson, keyToken, type KeyValueStore } from "../../gateway/stores/KeyValueStore.js";
import { LinkStore } from "../../gateway/stores/LinkStore.js";
import { AdapterRuntime, type NativeMessage, type NativeRelations } from "../kit/AdapterRuntime.js";
import type { XmppBridgeConfig } from "./config.types.js";
import { escapeLocalpart } from "./escaping.js";
import { labelFor, markingOf } from "./securityLabels.js";
import { NS } from "./namespaces.js";
import { fromNativeId, toNativeMessage } from "./messageIds.js";
import { idsOf, reactionsOf, referencesOf, toNormalisedEvent } from "./toNormalisedEvent.js";
import { puppetNick, toGroupchat, toReactions } from "./toStanza.js";
import { xml, XmppComponent, type XmlElement } from "./XmppComponent.js";

/** How long to wait for a room to confirm a join. */
const JOIN_TIMEOUT_MS = 10_000;
/** How long to wait for the room to echo a message with the stanza-id it gave it. */
const REFLECTION_TIMEOUT_MS = 5_000;
/** Archive page size when catching up (XEP-0313 with XEP-0059). */
const MAM_PAGE = 100;
/** The bridge's own state: per room, the last stanza-id bridged. */
const STATE_BUCKET = "fedgate_xmpp_state";

interface Room {
  /** nick → real full JID of native occupants, where the room reports it. */
  occupants: Map<string, string | undefined>;
  /** fedgate's own occupants here (bot and puppets), by full JID: the nick and the join, done or in progress. */
  own: Map<string, { nick: string; joined: Promise<void> }>;
  /** Set once the bot's own join is confirmed: occupants the room lists before that were there already. */
  listening: boolean;
}

export class XmppBridge {
  private readonly rooms = new Map<string, Room>();
  private readonly pendingJoins = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  /** Messages a puppet sent, by "<room> <id>", waiting for the room's echo and its stanza-id. */
  private readonly pendingEchoes = new Map<string, (stanzaId: string | undefined) => void>();
  /** A room's messages, live or from its archive, are handled one at a time and in order. */
  private readonly perRoom = new KeyedSequencer();

  private constructor(
    private readonly config: Required<Pick<XmppBridgeConfig, "botNick" | "maxBodyBytes" | "labels">> &
      XmppBridgeConfig,
    private readonly component: XmppComponent,
    private readonly runtime: AdapterRuntime,
    private readonly links: LinkStore,
    private readonly state: KeyValueStore,
    private readonly log: Logger,
  ) {}

  static async start(bus: Bus, config: XmppBridgeConfig, secret: string, log: Logger): Promise<XmppBridge> {
    const runtime = await AdapterRuntime.open(bus, { network: "xmpp", instance: config.instance, log });
    const links = new LinkStore(await bus.keyValue(buckets.links));
    await links.start();
    const component = new XmppComponent({ service: config.service, domain: config.domain, secret, log });
    const bridge = new XmppBridge(
      {
        ...config,
        botNick: config.botNick ?? "fedgate",
        maxBodyBytes: config.maxBodyBytes ?? 65536,
        labels: config.labels ?? [],
      },
      component,
      runtime,
      links,
      await bus.keyValue(STATE_BUCKET),
      log,
    );
    component.onStanza((stanza) => bridge.receive(stanza));
    component.onOnline(() => {
      // A reconnection loses every room membership.
      bridge.rooms.clear();
      bridge.joinLinkedRooms();
    });
    links.onChange(() => bridge.joinLinkedRooms());
    try {
      await component.start();
      await runtime.consumeDeliveries((delivery, relations) => bridge.deliver(delivery, relations));
    } catch (error) {
      await bridge.stop();
      throw error;
    }
    return bridge;
  }

  private get botJid(): string {
    return `fedgate@${this.config.domain}/bridge`;
  }

  /** The linked group chats of this instance. */
  private linkedRooms(): string[] {
    return this.links
      .list()
      .flatMap((link) => link.endpoints)
      .filter(
        (e) => e.network === "xmpp" && e.instance === this.config.instance && (e.kind ?? "room") === "room",
      )
      .map((e) => e.conversation)
      .filter((room) => this.config.mucDomains.includes(room.split("@")[1] ?? ""));
  }

  private joinLinkedRooms(): void {
    for (const room of this.linkedRooms()) {
      if (this.rooms.get(room)?.own.has(this.botJid) === true) continue;
      this.join(room, this.botJid, this.config.botNick)
        .then(() => this.catchUp(room))
        .catch((error: unknown) =>
          this.log.error({ room, err: error }, "cannot join or catch up with linked room"),
        );
    }
  }

  /**
   * Bridges what the room received while the bridge was away: its archive (XEP-0313) after the last
   * stanza-id bridged, page by page. A room never bridged before starts from now.
   */
  private async catchUp(room: string): Promise<void> {
    let after = await this.lastBridged(room);
    if (after === undefined) return;
    let caughtUp = 0;
    for (;;) {
      const queryid = randomUUID();
      const result = await this.component.request(
        xml(
          "iq",
          { type: "set", to: room, from: this.botJid },
          xml(
            "query",
            { xmlns: NS.mam, queryid },
            xml("set", { xmlns: NS.rsm }, xml("max", {}, String(MAM_PAGE)), xml("after", {}, after)),
          ),
        ),
      );
      // The archived messages arrived before the result and are queued for the room.
      await this.perRoom.idle();
      const fin = result.getChild("fin", NS.mam);
      const last = fin?.getChild("set", NS.rsm)?.getChildText("last");
      caughtUp += Number(fin?.getChild("set", NS.rsm)?.getChildText("count") ?? 0);
      if (fin?.attrs["complete"] === "true" || last === null || last === undefined || last === after) break;
      after = last;
    }
    this.log.info({ room, archived: caughtUp }, "caught up with the room's archive");
  }

  /** Tells a sender, with a stanza error their client shows, that their message was not bridged and why. */
  private async refuse(stanza: XmlElement, to: string, error: Error): Promise<void> {
    await this.component.send(
      xml(
        "message",
        { type: "error", from: this.botJid, to, id: stanza.attrs["id"] },
        xml(
          "error",
          { type: "cancel" },
          xml("policy-violation", { xmlns: NS.stanzas }),
          xml("text", { xmlns: NS.stanzas }, `Not bridged: ${error.message}`),
        ),
      ),
    );
  }

  /**
   * XEP-0444 sends a user's whole set of reactions on a message; the other networks add and remove one at a
   * time. The set each user (native or puppet) has on each message is kept, and the difference translated.
   */
  private async swapReactions(
    room: string,
    stanzaId: string,
    user: string,
    change: (current: string[]) => string[],
  ): Promise<{ before: string[]; after: string[] }> {
    const key = `reactions.${keyToken(room)}.${keyToken(stanzaId)}.${keyToken(user)}`;
    const entry = await this.state.get(key);
    const before = entry === undefined ? [] : (decodeJson(entry.value) as string[]);
    const after = change(before);
    await this.state.put(key, encodeJson(after));
    return { before, after };
  }

  private async publishReactions(
    room: string,
    nick: string,
    user: string,
    reactsTo: string,
    reactions: { to: string; keys: string[] },
    stanzaId: string | undefined,
  ): Promise<void> {
    const { before, after } = await this.swapReactions(room, reactions.to, user, () => reactions.keys);
    const changes = [
      ...after.filter((k) => !before.includes(k)).map((k) => ["reaction.added", k] as const),
      ...before.filter((k) => !after.includes(k)).map((k) => ["reaction.removed", k] as const),
    ];
    for (const [type, reaction] of changes) {
      const id = this.eventIdFor(room, stanzaId ?? randomUUID(), type, reaction);
      await this.runtime.publish({
        specVersion: "1",
        id,
        type,
        source: { network: "xmpp", instance: this.config.instance, conversation: room },
        sender: { userId: user, displayName: nick },
        content: { reaction },
        relations: { reactsTo },
        timestamp: new Date().toISOString(),
      });
    }
  }

  /** The event id of a room message, derived from its stanza-id so that a message seen twice is one event. */
  private eventIdFor(room: string, stanzaId: string, ...detail: string[]): string {
    return createHash("sha256")
      .update([`xmpp/${this.config.instance}/${room}/${stanzaId}`, ...detail].join("/"))
      .digest("hex")
      .slice(0, 32);
  }

  /** Where catching up resumes: the last stanza-id bridged (or deliberately passed over) in a room. */
  private async markBridged(room: string, stanzaId: string | undefined): Promise<void> {
    if (stanzaId !== undefined) await this.state.put(`last.${keyToken(room)}`, encodeJson(stanzaId));
  }

  /** A native user may write through the bridge unless the room shows their JID outside userDomains. */
  private allowed(realJid: string | undefined): boolean {
    const domain = realJid?.split("@")[1];
    return domain === undefined || this.config.userDomains.includes(domain);
  }

  private async lastBridged(room: string): Promise<string | undefined> {
    const entry = await this.state.get(`last.${keyToken(room)}`);
    return entry === undefined ? undefined : (decodeJson(entry.value) as string);
  }

  private room(jid: string): Room {
    let room = this.rooms.get(jid);
    if (room === undefined) {
      room = { occupants: new Map(), own: new Map(), listening: false };
      this.rooms.set(jid, room);
    }
    return room;
  }

  /** Joins `room` as `fullJid` with `nick`; resolves when the room confirms. Joining twice is a no-op. */
  private join(roomJid: string, fullJid: string, nick: string): Promise<void> {
    const room = this.room(roomJid);
    const existing = room.own.get(fullJid);
    if (existing !== undefined) return existing.joined;
    const joined = new Promise<void>((resolve, reject) => {
      const key = `${roomJid}/${nick}`;
      const timer = setTimeout(() => {
        this.pendingJoins.delete(key);
        reject(new PermanentError("FG_PEER_REFUSED", `room ${roomJid} did not confirm the join of ${nick}`));
      }, JOIN_TIMEOUT_MS);
      this.pendingJoins.set(key, {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
    room.own.set(fullJid, { nick, joined });
    joined.catch(() => room.own.delete(fullJid));
    void this.component
      .send(
        xml(
          "presence",
          { from: fullJid, to: `${roomJid}/${nick}` },
          // No history: what was said before is not new, and catching up is MAM's job.
          xml("x", { xmlns: NS.muc }, xml("history", { maxstanzas: "0" })),
        ),
      )
      .catch((error: unknown) => this.pendingJoins.get(`${roomJid}/${nick}`)?.reject(error as Error));
    return joined;
  }

  private receive(stanza: XmlElement): void {
    try {
      if (stanza.name === "presence") this.onPresence(stanza);
      else if (stanza.name === "message") this.onMessage(stanza);
    } catch (error) {
      this.log.warn({ err: error, from: stanza.attrs["from"] }, "stanza refused");
    }
  }

  private onPresence(stanza: XmlElement): void {
    const [roomJid, nick] = splitOccupant(stanza.attrs["from"]);
    if (roomJid === undefined || nick === undefined) return;
    const key = `${roomJid}/${nick}`;
    const pending = this.pendingJoins.get(key);
    if (stanza.attrs["type"] === "error") {
      this.pendingJoins.delete(key);
      const condition = stanza
        .getChild("error")
        ?.children.find((c): c is XmlElement => typeof c !== "string")?.name;
      pending?.reject(
        new PermanentError("FG_PEER_REFUSED", `room ${roomJid} refused ${nick}: ${condition ?? "error"}`),
      );
      return;
    }
    const available = stanza.attrs["type"] !== "unavailable";
    if (available && pending !== undefined) {
      this.pendingJoins.delete(key);
      pending.resolve();
    }
    // Every own occupant (bot and puppets) gets each presence: the bot's copy alone tells who came and went.
    if (stanza.attrs["to"] !== this.botJid) return;
    const room = this.room(roomJid);
    if (nick === this.config.botNick) {
      room.listening = available;
      return;
    }
    if (isOwnNick(room, nick)) return;
    const fullRealJid = stanza.getChild("x", NS.mucUser)?.getChild("item")?.attrs["jid"];
    const realJid = fullRealJid?.split("/")[0];
    if (!available) {
      // A nick change (status 303) arrives as this leave and then a join under the new nick.
      if (room.listening && room.occupants.has(nick))
        this.publishMembership("member.left", roomJid, nick, realJid);
      room.occupants.delete(nick);
      return;
    }
    if (room.listening && !room.occupants.has(nick))
      this.publishMembership("member.joined", roomJid, nick, realJid);
    room.occupants.set(nick, fullRealJid);
  }

  private publishMembership(
    type: "member.joined" | "member.left",
    room: string,
    nick: string,
    realJid: string | undefined,
  ): void {
    if (!this.allowed(realJid)) return;
    this.perRoom.run(room, () =>
      this.runtime
        .publish({
          specVersion: "1",
          id: this.runtime.newEventId(),
          type,
          source: { network: "xmpp", instance: this.config.instance, conversation: room },
          sender: { userId: realJid ?? `${room}/${nick}`, displayName: nick },
          timestamp: new Date().toISOString(),
        })
        .catch((error: unknown) => this.log.error({ err: error, room, nick }, "cannot publish membership")),
    );
  }

  /** A live group chat message, or one from a room's archive (a MAM result), queued per room. */
  private onMessage(stanza: XmlElement): void {
    const result = stanza.getChild("result", NS.mam);
    const archived = result?.getChild("forwarded", NS.forward)?.getChild("message");
    const message = archived ?? stanza;
    if (message.attrs["type"] !== "groupchat") return;
    const [roomJid, nick] = splitOccupant(message.attrs["from"]);
    if (roomJid === undefined || nick === undefined) return;
    if (archived === undefined && stanza.attrs["to"] !== this.botJid) {
      // The room sends every message to each of fedgate's occupants (bot and puppets): read the bot's copy
      // only, except to learn the stanza-id of what a puppet just sent.
      const ids = idsOf(stanza, roomJid);
      this.pendingEchoes.get(`${roomJid} ${ids.originId ?? ""}`)?.(ids.stanzaId);
      return;
    }
    // In an archive, the result's id is the message's stanza-id.
    const archiveId = result?.attrs["id"];
    this.perRoom.run(roomJid, () =>
      this.onGroupchat(message, roomJid, nick, archiveId).catch((error: unknown) =>
        this.log.warn({ err: error, from: message.attrs["from"] }, "group chat message refused"),
      ),
    );
  }

  private async onGroupchat(
    stanza: XmlElement,
    roomJid: string,
    nick: string,
    archiveId?: string,
  ): Promise<void> {
    const room = this.rooms.get(roomJid);
    const ids = idsOf(stanza, roomJid);
    const stanzaId = ids.stanzaId ?? archiveId;
    const conversation = { network: "xmpp", instance: this.config.instance, conversation: roomJid };
    // Bridged already (seen live and again in the archive, or before a restart): nothing to do.
    if (stanzaId !== undefined && (await this.runtime.messages.eventId(conversation, stanzaId)) !== undefined)
      return;
    if (room === undefined || isOwnNick(room, nick)) {
      await this.markBridged(roomJid, stanzaId);
      return;
    }
    const fullRealJid = room.occupants.get(nick);
    const realJid = fullRealJid?.split("/")[0];
    if (!this.allowed(realJid)) {
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `${realJid ?? nick} is outside the configured user domains`,
      );
    }
    const eventOf = (nativeId: string | undefined): Promise<string | undefined> =>
      nativeId === undefined
        ? Promise.resolve(undefined)
        : this.runtime.messages.eventId(conversation, nativeId);
    const reactions = reactionsOf(stanza);
    if (reactions !== undefined) {
      const reactsTo = await eventOf(reactions.to);
      if (reactsTo === undefined) {
        this.log.info(
          { room: roomJid, to: reactions.to },
          "reactions to a message fedgate never saw; not bridged",
        );
      } else {
        await this.publishReactions(
          roomJid,
          nick,
          realJid ?? `${roomJid}/${nick}`,
          reactsTo,
          reactions,
          stanzaId,
        );
      }
      await this.markBridged(roomJid, stanzaId);
      return;
    }
    let marking: string | undefined;
    try {
      marking = markingOf(stanza, this.config.labels);
    } catch (error) {
      // Refused before anything is published; the sender's client shows why (XEP-0258 §5).
      // An error to a bare JID is dropped by the server: address the sender's session, or the occupant.
      await this.refuse(stanza, fullRealJid ?? `${roomJid}/${nick}`, error as Error);
      throw error;
    }
    const references = referencesOf(stanza);
    const [replaces, redacts, replyTo] = await Promise.all([
      eventOf(references.replaces),
      eventOf(references.retracts),
      eventOf(references.repliesTo),
    ]);
    if (
      (references.replaces !== undefined && replaces === undefined) ||
      (references.retracts !== undefined && redacts === undefined)
    ) {
      this.log.info(
        { room: roomJid, references },
        "correction or retraction of a message fedgate never saw; not bridged",
      );
      return;
    }
    const native = toNativeMessage({ ...ids, ...(stanzaId === undefined ? {} : { stanzaId }) });
    const event = toNormalisedEvent(stanza, {
      instance: this.config.instance,
      room: roomJid,
      nick,
      realJid,
      messageId: native?.id,
      ...(marking === undefined ? {} : { marking }),
      ...(replaces === undefined ? {} : { replaces }),
      ...(redacts === undefined ? {} : { redacts }),
      ...(replyTo === undefined ? {} : { replyTo }),
      // Derived from the room's stanza-id, so a message seen twice is the same event (and stored once).
      newEventId: () =>
        stanzaId === undefined ? this.runtime.newEventId() : this.eventIdFor(roomJid, stanzaId),
      maxBodyBytes: this.config.maxBodyBytes,
    });
    if (event !== undefined) await this.runtime.publish(event, native?.aliases ?? []);
    await this.markBridged(roomJid, stanzaId);
  }

  /** Posts a delivery into its room as the sender's puppet; returns the ids the message has there. */
  private async deliver(delivery: Delivery, relations: NativeRelations): Promise<NativeMessage | undefined> {
    const { target, event } = delivery;
    if ((target.kind ?? "room") !== "room") {
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `direct chats are not bridged to XMPP yet (${target.conversation})`,
      );
    }
    const messageId = randomUUID();
    const puppet = `${escapeLocalpart(`${event.source.network}.${event.source.instance}.${event.sender.userId}`)}@${this.config.domain}`;
    const fullJid = `${puppet}/fedgate`;
    const reaction = event.content?.reaction;
    const reactingTo =
      relations.reactsTo === undefined ? undefined : fromNativeId(relations.reactsTo).stanzaId;
    if ((event.type === "reaction.added" || event.type === "reaction.removed") && reaction !== undefined) {
      if (reactingTo === undefined) return undefined;
      await this.joinAs(delivery, fullJid, puppet);
      const { after } = await this.swapReactions(target.conversation, reactingTo, puppet, (current) =>
        event.type === "reaction.added"
          ? [...new Set([...current, reaction])]
          : current.filter((k) => k !== reaction),
      );
      await this.component.send(toReactions(target.conversation, fullJid, messageId, reactingTo, after));
      return undefined;
    }
    if (event.type === "member.left") {
      await this.leave(target.conversation, fullJid);
      return undefined;
    }
    if (!["message.created", "message.edited", "message.deleted", "notice"].includes(event.type)) {
      this.log.info({ eventId: event.id, type: event.type }, "event type not bridged to XMPP yet");
      return undefined;
    }
    // A delivery back into the conversation its event came from is the gateway's own notice: the bot says it.
    const fromGateway =
      event.source.network === target.network &&
      event.source.instance === target.instance &&
      event.source.conversation === target.conversation;
    if (fromGateway) {
      const notice = toGroupchat({ ...delivery, marking: undefined }, relations, this.botJid, messageId);
      if (notice !== undefined) await this.component.send(notice);
      return undefined;
    }
    const stanza = toGroupchat(
      delivery,
      relations,
      fullJid,
      messageId,
      labelFor(delivery.marking, this.config.labels),
    );
    if (stanza === undefined) {
      this.log.info(
        { eventId: event.id, type: event.type },
        "the message this refers to never reached the room; nothing to do",
      );
      return undefined;
    }
    await this.joinAs(delivery, fullJid, puppet);
    const echoKey = `${target.conversation} ${messageId}`;
    const echoed = new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), REFLECTION_TIMEOUT_MS);
      this.pendingEchoes.set(echoKey, (stanzaId) => {
        clearTimeout(timer);
        resolve(stanzaId);
      });
    });
    try {
      await this.component.send(stanza);
      const stanzaId = await echoed;
      return event.type === "message.created" || event.type === "notice"
        ? toNativeMessage({ originId: messageId, ...(stanzaId === undefined ? {} : { stanzaId }) })
        : undefined;
    } finally {
      this.pendingEchoes.delete(echoKey);
    }
  }

  /** A puppet leaves a room, as the remote member it stands for left. */
  private async leave(roomJid: string, fullJid: string): Promise<void> {
    const room = this.rooms.get(roomJid);
    const nick = room?.own.get(fullJid)?.nick;
    if (room === undefined || nick === undefined) return;
    room.own.delete(fullJid);
    await this.component.send(
      xml("presence", { type: "unavailable", from: fullJid, to: `${roomJid}/${nick}` }),
    );
  }

  /** Puts the sender's puppet in the target room (once) and remembers who it stands for. */
  private async joinAs(delivery: Delivery, fullJid: string, puppet: string): Promise<void> {
    const { event, target } = delivery;
    await this.join(target.conversation, fullJid, puppetNick(delivery)).catch((error: unknown) => {
      throw error instanceof FedgateError ? error : new PermanentError("FG_PEER_REFUSED", String(error));
    });
    await this.runtime.identities.record(
      { ...event.sender, network: event.source.network, instance: event.source.instance },
      { network: "xmpp", instance: this.config.instance, userId: puppet },
    );
  }

  async stop(): Promise<void> {
    await this.runtime.close();
    await this.perRoom.idle();
    // A component's occupants are not removed when it disconnects: leave every room, as bot and as puppets.
    const leaving: Promise<void>[] = [];
    for (const [roomJid, room] of this.rooms) {
      for (const [fullJid, { nick }] of room.own) {
        leaving.push(
          this.component
            .send(xml("presence", { type: "unavailable", from: fullJid, to: `${roomJid}/${nick}` }))
            .catch(() => undefined),
        );
      }
    }
    await Promise.all(leaving);
    this.links.stop();
    await this.component.stop();
  }
}

/** Whether a nick is one of fedgate's own occupants: their messages come back and are not bridged. */
function isOwnNick(room: Room, nick: string): boolean {
  for (const own of room.own.values()) if (own.nick === nick) return true;
  return false;
}

/** "room@muc/nick" → ["room@muc", "nick"]. */
function splitOccupant(from: string | undefined): [string | undefined, string | undefined] {
  if (from === undefined) return [undefined, undefined];
  const slash = from.indexOf("/");
  return slash < 0 ? [from, undefined] : [from.slice(0, slash), from.slice(slash + 1)];
}
