/**
 * The XMPP bridge: an external component (XEP-0114) on its own domain. Its bot listens in every linked group
 * chat (XEP-0045) and publishes what native occupants write; each remote person speaks through a puppet JID
 * on the bridge domain, with the nickname "Name (Agency)". The stanzas a delivery posts have ids derived from
 * it, and a delivery handled again looks in the room's archive for what it posted before (postedBefore).
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Attachment, Delivery } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { FedgateError, PermanentError, TransientError } from "../../schemas/contract/errors.js";
import { parseDirectConversation } from "../../schemas/contract/directConversations.js";
import type { RemoteUser } from "../../gateway/platform/stores/IdentityStore.js";
import type { ConversationRef, LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";
import {
  AdapterRuntime,
  type DeliverySettings,
  type NativeMessage,
  type NativeRelations,
  type Unsupported,
  unsupported,
} from "../kit/AdapterRuntime.js";
import { carryAttachments } from "../kit/carryAttachments.js";
import { isGatewayNotice } from "../kit/isGatewayNotice.js";
import { xmppCapabilities } from "./capabilities.js";
import { BoundedMap } from "../kit/BoundedMap.js";
import { InputQueue } from "../kit/InputQueue.js";
import { NotStoredError } from "../kit/untilStored.js";
import { openDirectChat } from "../kit/openDirectChat.js";
import {
  attachmentFetchOptions,
  describeAttachment,
  fetchAttachment,
  type FetchAttachmentOptions,
} from "../kit/fetchAttachment.js";
import type { XmppBridgeConfig, XmppStoreRetry } from "./config.types.js";
import { boundedId } from "./boundedId.js";
import { isPostedByBridge, originIdFor } from "./deliveryIds.js";
import { labelFor, markingOf } from "./securityLabels.js";
import { NS } from "./namespaces.js";
import { fromNativeId, toNativeMessage, type XmppMessageIds } from "./messageIds.js";
import {
  withoutReplyFallback,
  idsOf,
  isModeration,
  MAX_REACTIONS,
  moderatorOf,
  nickOf,
  occupantIdOf,
  reactionsOf,
  referencesOf,
  stanzaIdOf,
  toNormalisedEvent,
} from "./toNormalisedEvent.js";
import {
  referenceId,
  toFileMessage,
  toMessage,
  toReactions,
  withBody,
  type MessageAddress,
  type Quote,
} from "./toStanza.js";
import { discoverUploadService, requestSlot, upload } from "./httpUpload.js";
import { outOfBandOf } from "./outOfBand.js";
import { puppetJid } from "./puppetJid.js";
import { nickCandidates, puppetNick } from "./nicks.js";
import { xml, XmppComponent, type XmlElement } from "./XmppComponent.js";
import { RoomArchive } from "./RoomArchive.js";
import { RoomCatchUp } from "./RoomCatchUp.js";
import { RoomEchoes, REFLECTION_TIMEOUT_MS } from "./RoomEchoes.js";
import { postedBefore, type PostedBeforeDeps } from "./postedBefore.js";
import { storedWith, type Stored } from "./stored.js";
import { bareJid, isAllowedUser, isPuppetJid, splitOccupant } from "./jids.js";
import { MucRooms, occupantSender, type Occupant } from "./MucRooms.js";

/** The bridge's own state: per room, the last stanza-id bridged. */
const STATE_BUCKET = "fedgate_xmpp_state";
/**
 * How many recent messages the bridge remembers: who sent them (to refuse them to their sender if policy
 * denies) and their text (for the quote a reply to them carries). Memory only: after a restart a denial is
 * still said in the conversation, and a reply still names what it answers.
 */
const RECENT_MESSAGES = 2000;

export class XmppBridge {
  private readonly rooms: MucRooms;
  private readonly echoes = new RoomEchoes();
  /**
   * A conversation's messages, live or from a room's archive, are handled one at a time and in order; at
   * most storeRetry.maxWaiting of them wait while the bus cannot store them.
   */
  private readonly perRoom: InputQueue;
  /**
   * The same for direct chats, by "<native user> <puppet>". Anyone may open one, so the bound holds for all
   * of them together too.
   */
  private readonly perDirect: InputQueue;
  /** Ends the retries of what waits for the bus (see untilStored) when the bridge stops. */
  private readonly stopping = new AbortController();
  private discoveredUploadService: Promise<string> | undefined;
  private readonly archive: RoomArchive;
  private readonly catchUp: RoomCatchUp;
  private readonly stored: Stored;
  private readonly postedBeforeDeps: PostedBeforeDeps;
  /** Recent native messages by event id: where to send a stanza error if the gateway refuses them. */
  private readonly recentSenders = new BoundedMap<string, { refusal: Refusal; id: string }>(RECENT_MESSAGES);
  /** Recent texts by "<conversation> <the id replies use>", for the quote a reply carries (XEP-0461). */
  private readonly recentTexts = new BoundedMap<string, Quote>(RECENT_MESSAGES);

  private constructor(
    private readonly config: Required<Pick<XmppBridgeConfig, "botNick" | "maxBodyBytes" | "labels">> &
      XmppBridgeConfig & { storeRetry: Required<XmppStoreRetry> },
    private readonly component: XmppComponent,
    private readonly runtime: AdapterRuntime,
    private readonly links: LinkStore,
    private readonly state: KeyValueStore,
    private readonly log: Logger,
  ) {
    this.perRoom = new InputQueue(config.storeRetry.maxWaiting);
    this.perDirect = new InputQueue(config.storeRetry.maxWaiting, config.storeRetry.maxWaiting);
    this.stored = storedWith(config.storeRetry, this.stopping.signal, log);
    this.archive = new RoomArchive(component, this.botJid);
    this.rooms = new MucRooms(component, this.botJid, log, (type, room, nick, occupant) =>
      this.publishMembership(type, room, nick, occupant),
    );
    this.postedBeforeDeps = { state, archive: this.archive, rooms: this.rooms, log };
    this.catchUp = new RoomCatchUp({
      archive: this.archive,
      state,
      perRoom: this.perRoom,
      stored: this.stored,
      stopping: this.stopping.signal,
      log,
      bridgeArchived: (room, { message, nick, archiveId, archivedJid }) =>
        this.onGroupchat(message, room, nick, archiveId, archivedJid),
    });
  }

  static async start(
    bus: Bus,
    config: XmppBridgeConfig,
    secret: string,
    log: Logger,
    deliveries: DeliverySettings = {},
  ): Promise<XmppBridge> {
    const runtime = await AdapterRuntime.open(bus, {
      capabilities: xmppCapabilities,
      network: "xmpp",
      instance: config.instance,
      log,
      ...deliveries,
    });
    const links = runtime.links;
    const component = new XmppComponent({ service: config.service, domain: config.domain, secret, log });
    const bridge = new XmppBridge(
      {
        ...config,
        botNick: config.botNick ?? "fedgate",
        maxBodyBytes: config.maxBodyBytes ?? 65536,
        labels: config.labels ?? [],
        // The schema's defaults, for a config that did not pass through it.
        storeRetry: { maxDelayMs: 5000, giveUpAfterMs: 60_000, maxWaiting: 1000, ...config.storeRetry },
      },
      component,
      runtime,
      links,
      await bus.keyValue(STATE_BUCKET),
      log,
    );
    component.onStanza((stanza) => bridge.receive(stanza));
    component.onGet(NS.vcard, "vCard", (iq) => bridge.vcardOf(iq));
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
      .endpointsOf("xmpp", this.config.instance)
      .filter(({ endpoint }) => (endpoint.kind ?? "room") === "room")
      .map(({ endpoint }) => endpoint.conversation)
      .filter((room) => this.config.mucDomains.includes(room.split("@")[1] ?? ""));
  }

  private joinLinkedRooms(): void {
    for (const room of this.linkedRooms()) {
      if (this.rooms.isIn(room, this.botJid)) continue;
      // First in the room's queue: live messages that arrive meanwhile wait until the archive is bridged,
      // so the room's order holds across a reconnection.
      this.perRoom.run(room, async () => {
        try {
          await this.rooms.join(room, this.botJid, nickCandidates(this.config.botNick));
        } catch (error) {
          this.log.error({ room, err: error }, "cannot join linked room");
          return;
        }
        await this.catchUp.catchUpOrFallBehind(room);
      });
    }
  }

  /**
   * Tells a sender, with a stanza error their client shows, that their message was not bridged and why.
   * The error names the stanza's id and comes from the JID they wrote to where the bridge owns it (a puppet),
   * else from the bot. An error to a bare JID is dropped by the server: it goes to the sender's session, or
   * to their occupant in a room that hides real JIDs.
   */
  private async refuse(refusal: Refusal, id: string | undefined, error: Error): Promise<void> {
    const transient = error instanceof FedgateError && error.transient;
    const condition =
      error instanceof FedgateError && typeof error.detail["condition"] === "string"
        ? error.detail["condition"]
        : transient
          ? "resource-constraint"
          : "policy-violation";
    await this.component.send(
      xml(
        "message",
        { type: "error", from: refusal.from, to: refusal.to, id },
        xml(
          "error",
          // "wait": sending it again later may work.
          { type: transient ? "wait" : "cancel" },
          xml(condition, { xmlns: NS.stanzas }),
          xml("text", { xmlns: NS.stanzas }, `Not bridged: ${error.message}`),
        ),
      ),
    );
  }

  /**
   * XEP-0444 sends a user's whole set of reactions on a message; the other networks add and remove one at a
   * time. The set each user (native or puppet) has on each message is kept, and the difference translated:
   * `apply` carries it, and only then is the new set kept, so that a retry after a failure in `apply` finds
   * the same difference again. Resolves with the new set.
   */
  private async swapReactions(
    conversation: string,
    messageId: string,
    user: string,
    change: (current: string[]) => string[],
    apply: (before: string[], after: string[]) => Promise<void>,
  ): Promise<string[]> {
    const key = `reactions.${keyToken(conversation)}.${keyToken(messageId)}.${keyToken(user)}`;
    const entry = await this.state.get(key);
    const before = entry === undefined ? [] : (decodeJson(entry.value) as string[]);
    const after = change(before);
    await apply(before, after);
    await this.state.put(key, encodeJson(after));
    return after;
  }

  private async publishReactions(
    chat: NativeChat,
    reactsTo: string,
    reactions: { to: string; keys: string[] },
  ): Promise<void> {
    const dedupeId = chat.dedupeId ?? chat.onceId;
    await this.swapReactions(
      chat.conversation,
      reactions.to,
      chat.sender.userId,
      () => reactions.keys,
      async (before, after) => {
        const changes = [
          ...after.filter((k) => !before.includes(k)).map((k) => ["reaction.added", k] as const),
          ...before.filter((k) => !after.includes(k)).map((k) => ["reaction.removed", k] as const),
        ];
        for (const [type, reaction] of changes) {
          await this.runtime.publish({
            specVersion: "1",
            id: this.runtime.eventIdOf(chat.conversation, dedupeId, type, reaction),
            type,
            source: { network: "xmpp", instance: this.config.instance, conversation: chat.conversation },
            sender: chat.sender,
            content: { reaction },
            relations: { reactsTo },
            timestamp: new Date().toISOString(),
          });
        }
      },
    );
  }

  private receive(stanza: XmlElement): void {
    try {
      if (stanza.name === "presence") this.rooms.onPresence(stanza);
      else if (stanza.name === "message") this.onMessage(stanza);
    } catch (error) {
      this.log.warn({ err: error, from: stanza.attrs["from"] }, "stanza refused");
    }
  }

  private publishMembership(
    type: "member.joined" | "member.left",
    room: string,
    nick: string,
    occupant: Occupant,
  ): void {
    if (!isAllowedUser(occupant.jid, this.config.userDomains)) return;
    // One id, so that a retry is the same event.
    const event = {
      specVersion: "1" as const,
      id: this.runtime.newEventId(),
      type,
      source: { network: "xmpp", instance: this.config.instance, conversation: room },
      sender: occupantSender(room, nick, occupant),
      timestamp: new Date().toISOString(),
    };
    // No archive keeps who came and went: what the bus does not store in time is lost, and logged.
    const lost = (error: unknown): void =>
      this.log.error({ err: error, room, type }, "membership change not bridged: the bus did not store it");
    const queued = this.perRoom.offer(room, () =>
      this.stored(() => this.runtime.publish(event), { room, type }).catch(lost),
    );
    if (!queued)
      lost(
        new TransientError(
          "FG_BUS_UNAVAILABLE",
          `${this.config.storeRetry.maxWaiting} messages of ${room} wait already`,
        ),
      );
  }

  private onMessage(stanza: XmlElement): void {
    const type = stanza.attrs["type"] ?? "normal";
    if (type === "error") {
      this.log.info(
        { from: stanza.attrs["from"], to: stanza.attrs["to"], error: stanza.getChild("error")?.toString() },
        "the XMPP server returned a stanza as undeliverable",
      );
      return;
    }
    const to = stanza.attrs["to"];
    if (
      (type === "chat" || type === "normal") &&
      stanza.getChild("result", NS.mam) === undefined &&
      to !== undefined &&
      isPuppetJid(to, this.config.domain)
    ) {
      this.onDirect(stanza, to);
      return;
    }
    this.onRoomMessage(stanza);
  }

  /** A live group chat message, queued per room, or one from a room's archive, kept for the catch-up. */
  private onRoomMessage(stanza: XmlElement): void {
    const answer = this.archive.answerIn(stanza);
    const archived = answer?.message;
    const message = archived ?? stanza;
    if (message.attrs["type"] !== "groupchat") return;
    const [roomJid, occupantNick] = splitOccupant(message.attrs["from"]);
    // A moderator's retraction comes from the room itself and names the moderator.
    const nick = occupantNick ?? splitOccupant(moderatorOf(message))[1];
    if (roomJid === undefined || nick === undefined) return;
    if (archived === undefined && stanza.attrs["to"] !== this.botJid) {
      // The room sends every message to each of fedgate's occupants (bot and puppets): read the bot's copy
      // only, except to learn the stanza-id of what a puppet just sent.
      this.echoes.heard(stanza, roomJid);
      return;
    }
    if (answer !== undefined) {
      // Only the catch-up asks the archive: its page is bridged in order once complete.
      answer.keep(nick);
      return;
    }
    if (this.catchUp.isBehind(roomJid)) {
      this.catchUp.leaveToArchive(roomJid, message);
      return;
    }
    const queued = this.perRoom.offer(roomJid, async () => {
      // The room fell behind after this was queued: the catch-up queued behind it reads it from the archive.
      if (this.catchUp.isBehind(roomJid)) {
        this.catchUp.leaveToArchive(roomJid, message);
        return;
      }
      await this.onGroupchat(message, roomJid, nick).catch((error: unknown) => {
        if (error instanceof NotStoredError) this.catchUp.fallBehind(roomJid, error);
        else this.log.error({ err: error, room: roomJid }, "cannot bridge a message");
      });
    });
    if (!queued) {
      this.catchUp.fallBehind(
        roomJid,
        new TransientError(
          "FG_BUS_UNAVAILABLE",
          `${this.config.storeRetry.maxWaiting} messages of ${roomJid} wait for the bus already`,
        ),
      );
      this.catchUp.leaveToArchive(roomJid, message);
    }
  }

  /**
   * Bridges a room's message, live or from its archive, retrying while the bus cannot store it; then moves
   * the room's catch-up point past it. Refused input is passed over, its sender told. Throws NotStoredError
   * when the bus did not store it in time: then the catch-up point stays, and the archive gives it again.
   */
  private async onGroupchat(
    stanza: XmlElement,
    roomJid: string,
    nick: string,
    archiveId?: string,
    archivedJid?: string,
  ): Promise<void> {
    const known = this.rooms.knows(roomJid);
    const occupant = this.rooms.occupant(roomJid, nick);
    const refusal = { from: this.botJid, to: occupant.jid ?? `${roomJid}/${nick}` };
    // Where catching up resumes: past this message, bridged or refused.
    let stanzaId: string | undefined;
    try {
      stanzaId = stanzaIdOf(stanza, roomJid) ?? boundedId(archiveId, "the archive's id");
      if (stanzaId !== undefined) this.rememberText(roomJid, stanzaId, stanza, nick, `${roomJid}/${nick}`);
      const ids = idsOf(stanza, roomJid);
      if (!known || this.rooms.isOwnNick(roomJid, nick) || isPostedByBridge(ids.originId)) {
        await this.stored(() => this.catchUp.markBridged(roomJid, stanzaId), { room: roomJid });
        return;
      }
      const occupantId = occupantIdOf(stanza);
      const chat: NativeChat = {
        conversation: roomJid,
        sender: occupantSender(roomJid, nick, {
          ...occupant,
          ...(occupantId === undefined ? {} : { occupantId }),
        }),
        refusal,
        dedupeId: stanzaId,
        onceId: randomUUID(),
        ids: { ...ids, ...(stanzaId === undefined ? {} : { stanzaId }) },
        moderated: isModeration(stanza, roomJid),
      };
      // The archive's word only ever refuses: what a message carries must not vouch for its sender.
      if (
        !isAllowedUser(occupant.jid, this.config.userDomains) ||
        !isAllowedUser(archivedJid, this.config.userDomains)
      ) {
        throw new PermanentError(
          "FG_NATIVE_INVALID",
          `${bareJid(occupant.jid ?? archivedJid ?? nick)} is outside the configured user domains`,
          { detail: { condition: "forbidden" } },
        );
      }
      await this.stored(() => this.publishNative(stanza, chat), { room: roomJid, stanzaId });
    } catch (error) {
      if (error instanceof NotStoredError) throw error;
      await this.refuseOnce(stanza, { refusal }, error);
    }
    await this.stored(() => this.catchUp.markBridged(roomJid, stanzaId), { room: roomJid });
  }

  /**
   * A message a native user wrote to a puppet: a direct chat with the remote person the puppet stands for.
   * The first one opens the chat: a link between this user and that person, of this server's agency and
   * theirs, which the policy then judges message by message.
   */
  private onDirect(stanza: XmlElement, puppetFullJid: string): void {
    const from = stanza.attrs["from"] ?? "";
    const puppet = bareJid(puppetFullJid);
    const refusal = { from: puppetFullJid, to: from };
    // Typing notifications, receipts and the like carry nothing to bridge, and must not open a chat.
    if (!carriesContent(stanza)) return;
    const onceId = randomUUID();
    const publish = async (): Promise<void> => {
      const remote = await this.remoteBehind(puppet);
      const conversation = await this.openDirect(bareJid(from), remote);
      const ids = idsOf(stanza, conversation);
      const displayName = nickOf(stanza) ?? bareJid(from).split("@")[0] ?? from;
      if (ids.originId !== undefined)
        this.rememberText(conversation, ids.originId, stanza, displayName, bareJid(from));
      await this.publishNative(stanza, {
        conversation,
        sender: { userId: bareJid(from), displayName },
        refusal,
        // Only this user writes natively in this conversation: their id for the message is unique here.
        dedupeId: ids.originId,
        onceId,
        ids,
      });
    };
    // No archive keeps a direct chat for the bridge: its messages wait for the bus, and the sender is told
    // if they finally do not get there.
    if (!isAllowedUser(from, this.config.userDomains) || !from.includes("@")) {
      void this.refuseOnce(
        stanza,
        { refusal },
        new PermanentError("FG_NATIVE_INVALID", `${bareJid(from)} is outside the configured user domains`, {
          detail: { condition: "forbidden" },
        }),
      );
      return;
    }
    const queued = this.perDirect.offer(`${bareJid(from)} ${puppet}`, async () => {
      try {
        await this.stored(publish, { from: bareJid(from), puppet });
      } catch (error) {
        await this.refuseOnce(
          stanza,
          { refusal },
          error instanceof NotStoredError ? notTakenInTime(error) : error,
        );
      }
    });
    if (!queued) {
      void this.refuseOnce(
        stanza,
        { refusal },
        new TransientError(
          "FG_BUS_UNAVAILABLE",
          "too many messages wait for the gateway; send it again later",
          {
            detail: { waiting: this.config.storeRetry.maxWaiting },
          },
        ),
      );
    }
  }

  /** The remote person a puppet stands for; an unknown puppet is an item-not-found for the sender. */
  private async remoteBehind(puppet: string): Promise<RemoteUser & { agency: string }> {
    const remote = await this.runtime.identities.remoteFor({
      network: "xmpp",
      instance: this.config.instance,
      userId: puppet,
    });
    if (remote?.agency === undefined) {
      throw new PermanentError("FG_NATIVE_INVALID", `${puppet} stands for no one fedgate knows`, {
        detail: { condition: "item-not-found" },
      });
    }
    return { ...remote, agency: remote.agency };
  }

  /** The direct conversation between a native user and a remote person, linked on first use. */
  private openDirect(native: string, remote: RemoteUser & { agency: string }): Promise<string> {
    const nativeUser = { network: "xmpp", instance: this.config.instance, userId: native };
    return openDirectChat(this.links, nativeUser, this.config.agency, remote, this.log, {
      condition: "service-unavailable",
    });
  }

  /**
   * Logs why a native message was not bridged and tells its sender: refused for good (their input), or not
   * now (a server or the bus unavailable: they may send it again).
   */
  private async refuseOnce(
    stanza: XmlElement,
    chat: Pick<NativeChat, "refusal">,
    error: unknown,
  ): Promise<void> {
    if (!(error instanceof FedgateError)) {
      this.log.error({ err: error, from: stanza.attrs["from"] }, "cannot bridge a message");
      return;
    }
    if (error.transient) this.log.error({ err: error, from: stanza.attrs["from"] }, "message not bridged");
    else this.log.warn({ err: error, from: stanza.attrs["from"] }, "message refused");
    await this.refuse(chat.refusal, stanza.attrs["id"], error).catch((cause: unknown) =>
      this.log.warn({ err: cause }, "cannot tell the sender their message was not bridged"),
    );
  }

  /**
   * Publishes what a native user wrote, in a room or a direct chat: a message, a correction, a retraction,
   * a reply or reactions. Throws FG_NATIVE_INVALID for what the sender must be told was refused.
   */
  private async publishNative(stanza: XmlElement, chat: NativeChat): Promise<void> {
    const conversation = { network: "xmpp", instance: this.config.instance, conversation: chat.conversation };
    // Bridged already (seen live and again in the archive, or before a restart): nothing to do.
    if (
      chat.dedupeId !== undefined &&
      (await this.runtime.messages.eventId(conversation, chat.dedupeId)) !== undefined
    )
      return;
    const eventOf = (nativeId: string | undefined): Promise<string | undefined> =>
      nativeId === undefined
        ? Promise.resolve(undefined)
        : this.runtime.messages.eventId(conversation, nativeId);
    const reactions = reactionsOf(stanza);
    if (reactions !== undefined) {
      const reactsTo = await eventOf(reactions.to);
      if (reactsTo === undefined) {
        this.log.info({ conversation: chat.conversation }, "reactions to a message fedgate never saw");
        return;
      }
      await this.publishReactions(chat, reactsTo, reactions);
      return;
    }
    // An unknown label is refused before anything is published; the sender's client shows why (XEP-0258 §5).
    const marking = markingOf(stanza, this.config.labels);
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
        { conversation: chat.conversation, references },
        "correction or retraction of a message fedgate never saw; not bridged",
      );
      return;
    }
    if (replaces !== undefined)
      await this.mustBeAuthor(conversation, replaces, chat.sender.userId, "correct");
    // A moderator's retraction (XEP-0425) comes from the room itself, which no occupant can write as.
    if (redacts !== undefined && chat.moderated !== true)
      await this.mustBeAuthor(conversation, redacts, chat.sender.userId, "retract");
    // Each linked file is fetched once to learn its size, type and hash; the event carries its link.
    const attachments = await Promise.all(outOfBandOf(stanza).map((link) => this.describeLink(link.url)));
    const native = toNativeMessage({ ...chat.ids, author: chat.sender.userId });
    const dedupeId = chat.dedupeId ?? chat.onceId;
    const event = toNormalisedEvent(stanza, {
      instance: this.config.instance,
      conversation: chat.conversation,
      sender: chat.sender,
      messageId: native?.id,
      ...(marking === undefined ? {} : { marking }),
      ...(replaces === undefined ? {} : { replaces }),
      ...(redacts === undefined ? {} : { redacts }),
      ...(replyTo === undefined ? {} : { replyTo }),
      ...(attachments.length === 0 ? {} : { attachments }),
      // Derived from the dedupe id, so a message seen twice, or published again, is the same event (and
      // stored once).
      newEventId: () => this.runtime.eventIdOf(chat.conversation, dedupeId),
      maxBodyBytes: this.config.maxBodyBytes,
    });
    if (event === undefined) return;
    this.rememberSender(event.id, chat.refusal, stanza.attrs["id"]);
    // An id this message gives itself that another message has already keeps naming that message: the
    // message map creates ids, never overwrites them.
    await this.runtime.publish(event, native?.aliases ?? []);
  }

  /**
   * XEP-0308 and XEP-0424: only a message's author may correct or retract it; the message map's native id
   * names the author (a native sender's id, or the puppet). Throws FG_NATIVE_INVALID (forbidden) for anyone
   * else, and for a message whose author the bridge did not record.
   */
  private async mustBeAuthor(
    conversation: ConversationRef,
    eventId: string,
    sender: string,
    what: "correct" | "retract",
  ): Promise<void> {
    const nativeId = await this.runtime.messages.nativeId(eventId, conversation);
    const author = nativeId === undefined ? undefined : fromNativeId(nativeId).author;
    if (author === sender) return;
    throw new PermanentError(
      "FG_NATIVE_INVALID",
      author === undefined
        ? `fedgate cannot tell who wrote the message to ${what}, so it does not ${what} it`
        : `only the author of a message may ${what} it`,
      { detail: { condition: "forbidden" } },
    );
  }

  /**
   * Describes a file a native user linked, from a host the bridge's rules allow. Whatever fails (a refused
   * host, a closed port, a missing file) the sender is told the same, with the same stanza error: telling
   * them apart would let anyone in a room map the bridge's network. The log keeps the cause.
   */
  private async describeLink(url: string): Promise<Attachment> {
    try {
      return await describeAttachment(url, this.attachmentLimits);
    } catch (cause) {
      throw new PermanentError("FG_NATIVE_INVALID", "a linked file cannot be fetched", {
        cause,
        detail: { condition: "not-acceptable" },
      });
    }
  }

  /** Keeps a message's text (without its own reply quote) for a reply to it to quote. */
  private rememberText(
    conversation: string,
    id: string,
    stanza: XmlElement,
    author: string,
    jid: string,
  ): void {
    const body = stanza.getChildText("body");
    if (body === null || stanza.getChild("replace", NS.correction) !== undefined) return;
    this.recentTexts.set(`${conversation} ${id}`, { author, jid, text: withoutReplyFallback(stanza, body) });
  }

  private rememberSender(eventId: string, refusal: Refusal, id: string | undefined): void {
    if (id === undefined) return;
    this.recentSenders.set(eventId, { refusal, id });
  }

  /** Where a delivery goes: a linked room, or the native participant of a direct chat. */
  private destination(delivery: Delivery): { type: MessageAddress["type"]; to: string } {
    const { target } = delivery;
    if ((target.kind ?? "room") === "room") return { type: "groupchat", to: target.conversation };
    const direct = parseDirectConversation(target.conversation);
    if (direct === undefined || !direct.participant.includes("@")) {
      throw new PermanentError(
        "FG_EVENT_INVALID",
        `${target.conversation} is not a direct conversation of this server`,
      );
    }
    return { type: "chat", to: direct.participant };
  }

  /**
   * Posts a delivery as the sender's puppet, into its room or to the native participant of a direct chat;
   * returns the ids the message has there.
   */
  private async deliver(
    delivery: Delivery,
    relations: NativeRelations,
  ): Promise<NativeMessage | Unsupported | undefined> {
    const { target, event } = delivery;
    const { type, to } = this.destination(delivery);
    // Derived from the delivery: handled again, it posts under the same ids (see postedBefore).
    const messageId = originIdFor(delivery.id, 0);
    const puppet = puppetJid(event.source.network, event.source.instance, event.sender.userId, this.config);
    const fullJid = `${puppet}/fedgate`;
    const address: MessageAddress = { type, to, from: fullJid, id: messageId };
    const reaction = event.content?.reaction;
    if ((event.type === "reaction.added" || event.type === "reaction.removed") && reaction !== undefined) {
      const reactingTo =
        relations.reactsTo === undefined ? undefined : referenceId(relations.reactsTo, type, "other");
      if (reactingTo === undefined) return undefined;
      await this.present(delivery, fullJid, puppet, type);
      await this.swapReactions(
        target.conversation,
        reactingTo,
        puppet,
        (current) => {
          if (event.type === "reaction.removed") return current.filter((k) => k !== reaction);
          const added = [...new Set([...current, reaction])];
          return added.length > MAX_REACTIONS ? current : added;
        },
        async (_before, after) => {
          if (!after.includes(reaction) && event.type === "reaction.added") {
            // Each change sends the puppet's whole set: without a bound, every one would grow the stanza.
            this.log.warn(
              { eventId: event.id, conversation: target.conversation },
              `reaction not bridged: its sender has ${MAX_REACTIONS} on this message already, as many as the bridge carries`,
            );
            return;
          }
          await this.component.send(toReactions(address, reactingTo, after));
        },
      );
      return undefined;
    }
    if (event.type === "member.left") {
      if (type === "groupchat") await this.rooms.leave(target.conversation, fullJid);
      return undefined;
    }
    const changed =
      event.type === "message.deleted"
        ? relations.redacts
        : event.type === "message.edited"
          ? relations.replaces
          : undefined;
    if (changed !== undefined && fromNativeId(changed).author !== puppet) {
      // Only a message's sender may retract or correct it (XEP-0424, XEP-0308). Anyone else's retraction needs a
      // moderator's (XEP-0425), which neither Prosody 0.12 nor ejabberd 23.01 offers, and a correction from
      // another puppet would be taken by some clients as a change to someone else's words. Say so rather than
      // send what clients would wrongly apply or silently drop.
      return unsupported(`${event.type} of a message by someone else: XMPP lets only its author make it`);
    }
    // A delivery back into the conversation its event came from is the gateway's own notice: the bot says it,
    // and where it answers a native message just sent, that message's sender gets a stanza error too.
    if (isGatewayNotice(delivery)) {
      await this.sayNotice(delivery, relations, { ...address, from: this.botJid });
      return undefined;
    }
    const label = labelFor(delivery.marking, this.config.labels);
    // Files first: a transient failure retries the delivery before anything of it reached the conversation.
    const files =
      event.type === "message.created"
        ? await this.uploadFiles(delivery, fullJid)
        : { uploaded: [], notes: [] };
    const text =
      files.notes.length === 0
        ? delivery
        : withBody(delivery, [event.content?.body, ...files.notes].filter(Boolean).join("\n"));
    const stanzas: XmlElement[] = [];
    // Files alone, with no text and no marking to show, need no text message before them.
    const filesOnly =
      files.uploaded.length > 0 && (text.event.content?.body ?? "") === "" && delivery.marking === undefined;
    if (!filesOnly) {
      const stanza = toMessage(text, relations, address, label, this.quoteFor(delivery, relations, type));
      if (stanza === undefined) {
        this.log.info(
          { eventId: event.id, type: event.type },
          "the message this refers to never reached the conversation; nothing to do",
        );
        return undefined;
      }
      stanzas.push(stanza);
    }
    for (const file of files.uploaded) {
      // Each stanza's id is the delivery's and its place among them.
      const id = originIdFor(delivery.id, stanzas.length);
      stanzas.push(toFileMessage(delivery, { ...address, id }, file, label));
    }
    await this.present(delivery, fullJid, puppet, type);
    const created = event.type === "message.created" || event.type === "notice";
    // The first stanza is the message others refer to; the files that follow it are its parts.
    if (type === "chat") {
      // A direct chat has no archive the bridge can read: a delivery handled again there posts again, and
      // the person may see it twice.
      for (const stanza of stanzas) await this.component.send(stanza);
      return created ? toNativeMessage({ originId: messageId, author: puppet }) : undefined;
    }
    const posted = await postedBefore(
      this.postedBeforeDeps,
      delivery,
      fullJid,
      stanzas.map((stanza) => stanza.attrs["id"] ?? ""),
    );
    // The room's echo is the only receipt a component gets: undefined when none came in time.
    const echoed = posted.has(messageId)
      ? Promise.resolve({ stanzaId: posted.get(messageId) })
      : this.echoes.expect(target.conversation, messageId);
    try {
      for (const stanza of stanzas)
        if (!posted.has(stanza.attrs["id"] ?? "")) await this.component.send(stanza);
      const echo = await echoed;
      // Written to a server going down, a stanza may be lost without a word: the delivery is handed out
      // again, and postedBefore asks the room's archive whether it got there after all.
      if (echo === undefined)
        throw new TransientError(
          "FG_PEER_UNAVAILABLE",
          `the room ${target.conversation} did not echo the message within ${String(REFLECTION_TIMEOUT_MS)} ms`,
          { detail: { deliveryId: delivery.id } },
        );
      const { stanzaId } = echo;
      return created
        ? toNativeMessage({
            originId: messageId,
            author: puppet,
            ...(stanzaId === undefined ? {} : { stanzaId }),
          })
        : undefined;
    } finally {
      if (!posted.has(messageId)) this.echoes.forget(target.conversation, messageId);
    }
  }

  /** The text a delivered reply quotes, where the bridge saw the message it answers. */
  private quoteFor(
    delivery: Delivery,
    relations: NativeRelations,
    type: MessageAddress["type"],
  ): Quote | undefined {
    if (delivery.event.type !== "message.created" || relations.replyTo === undefined) return undefined;
    const id = referenceId(relations.replyTo, type, "other");
    return id === undefined ? undefined : this.recentTexts.get(`${delivery.target.conversation} ${id}`);
  }

  /**
   * Re-uploads a delivery's files to the server's upload service as the puppet. A file that cannot be carried
   * for good (too large, gone, not what the event says) becomes a line of text saying so; a passing failure
   * throws, and the delivery is retried.
   */
  private async uploadFiles(
    delivery: Delivery,
    from: string,
  ): Promise<{ uploaded: { url: string; name: string }[]; notes: string[] }> {
    const { carried, notCarried } = await carryAttachments(
      delivery.event,
      async (attachment) => {
        const bytes = await fetchAttachment(attachment, this.attachmentLimits);
        const slot = await requestSlot(this.component, {
          service: await this.uploadService(),
          from,
          filename: attachment.name,
          size: attachment.size,
          contentType: attachment.mediaType,
        });
        await upload(slot, bytes, attachment.mediaType);
        return { url: slot.get, name: attachment.name };
      },
      this.log,
      "XMPP",
    );
    return {
      uploaded: carried.map((c) => c.result),
      notes: notCarried.map((n) => `[${n.attachment.name}: not bridged, ${n.reason}]`),
    };
  }

  /** The upload service puppets use: configured, or discovered once on the users' server. */
  private uploadService(): Promise<string> {
    const configured = this.config.attachments?.uploadService;
    if (configured !== undefined) return Promise.resolve(configured);
    const domain = this.config.userDomains[0];
    this.discoveredUploadService ??= discoverUploadService(this.component, this.botJid, domain).then(
      (service) => {
        if (service === undefined) {
          throw new PermanentError(
            "FG_ATTACHMENT_INVALID",
            `${domain} offers no HTTP File Upload service (XEP-0363)`,
          );
        }
        return service.jid;
      },
    );
    // A failed discovery is tried again with the next file.
    this.discoveredUploadService.catch(() => (this.discoveredUploadService = undefined));
    return this.discoveredUploadService;
  }

  private get attachmentLimits(): FetchAttachmentOptions {
    return attachmentFetchOptions(this.config.attachments);
  }

  private async sayNotice(
    delivery: Delivery,
    relations: NativeRelations,
    address: MessageAddress,
  ): Promise<void> {
    const notice = toMessage({ ...delivery, marking: undefined }, relations, address);
    // Said by the bot, and looked for in the room's archive like a puppet's message when handled again.
    const posted =
      notice === undefined || address.type !== "groupchat"
        ? new Map<string, string | undefined>()
        : await postedBefore(this.postedBeforeDeps, delivery, address.from, [address.id]);
    if (notice !== undefined && !posted.has(address.id)) await this.component.send(notice);
    const answered = delivery.event.relations?.replyTo;
    const sender = answered === undefined ? undefined : this.recentSenders.get(answered);
    if (sender === undefined) return;
    await this.refuse(
      sender.refusal,
      sender.id,
      new PermanentError("FG_NATIVE_INVALID", delivery.event.content?.body ?? "refused by policy"),
    );
  }

  /**
   * Makes the sender's puppet ready to speak: in the target room (joined once), and known as the remote
   * person it stands for, so that a native user who writes to it reaches them.
   */
  private async present(
    delivery: Delivery,
    fullJid: string,
    puppet: string,
    type: MessageAddress["type"],
  ): Promise<void> {
    const { event, target, senderAgency } = delivery;
    if (type === "groupchat") {
      await this.rooms
        .join(target.conversation, fullJid, nickCandidates(puppetNick(delivery)))
        .catch((error: unknown) => {
          throw error instanceof FedgateError ? error : new PermanentError("FG_PEER_REFUSED", String(error));
        });
    }
    await this.runtime.identities.record(
      {
        ...event.sender,
        network: event.source.network,
        instance: event.source.instance,
        ...(senderAgency === undefined ? {} : { agency: senderAgency.id, agencyName: senderAgency.name }),
      },
      { network: "xmpp", instance: this.config.instance, userId: puppet },
    );
  }

  /** XEP-0054: a puppet's vCard says who it stands for: their name, and their agency as organisation. */
  private async vcardOf(iq: XmlElement): Promise<XmlElement> {
    const puppet = bareJid(iq.attrs["to"] ?? "");
    const remote = await this.runtime.identities.remoteFor({
      network: "xmpp",
      instance: this.config.instance,
      userId: puppet,
    });
    if (remote === undefined)
      return xml("error", { type: "cancel" }, xml("item-not-found", { xmlns: NS.stanzas }));
    const name = remote.displayName ?? remote.userId;
    const agency = remote.agencyName ?? remote.agency;
    return xml(
      "vCard",
      { xmlns: NS.vcard },
      xml("FN", {}, name),
      xml("NICKNAME", {}, agency === undefined ? name : `${name} (${agency})`),
      agency === undefined ? undefined : xml("ORG", {}, xml("ORGNAME", {}, agency)),
    );
  }

  async stop(): Promise<void> {
    // What waits for the bus stops waiting: a room's message is read from its archive by the next start, a
    // direct message's sender is told (while the component is still connected).
    this.stopping.abort();
    await this.runtime.close();
    await Promise.all([this.perRoom.idle(), this.perDirect.idle()]);
    // A component's occupants are not removed when it disconnects: leave every room, as bot and as puppets.
    await this.rooms.leaveAll();
    await this.component.stop();
  }
}

/** Where a refusal of a native message goes: from the JID they wrote to (or the bot), to the sender. */
interface Refusal {
  from: string;
  to: string;
}

/** A native message's conversation and sender, as the bridge resolved them. */
interface NativeChat {
  /** The room's bare JID, or the direct conversation's id. */
  conversation: string;
  sender: { userId: string; displayName: string };
  refusal: Refusal;
  /**
   * What makes the message one event however often it is seen: the room's stanza-id, or in a direct chat the
   * sender's id for it.
   */
  dedupeId: string | undefined;
  /**
   * A random id chosen before the first attempt to publish: what the events of a message without a dedupe id
   * are derived from, so that a retry publishes the same events.
   */
  onceId: string;
  ids: XmppMessageIds;
  /** A moderator's retraction (XEP-0425), which the room sent from its own JID. */
  moderated?: boolean;
}

/**
 * What a sender is told of a message the bus did not confirm in time, without the bus's inner workings (the
 * cause keeps them for the log). "May": the bus client can still hand on an attempt it held while cut off.
 */
function notTakenInTime(error: NotStoredError): TransientError {
  return new TransientError(
    error.code,
    "the gateway did not confirm it in time, so it may not have arrived; send it again",
    { cause: error },
  );
}

/** Whether a direct message carries anything to bridge (not only a chat state or a receipt). */
function carriesContent(stanza: XmlElement): boolean {
  if (stanza.getChild("body") !== undefined) return true;
  try {
    return reactionsOf(stanza) !== undefined || referencesOf(stanza).retracts !== undefined;
  } catch {
    // An id too long to read: it is refused, and its sender told, where messages are handled.
    return true;
  }
}
