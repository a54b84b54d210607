/**
 * The XMPP bridge: an external component (XEP-0114) on its own domain. Its bot listens in every linked group
 * chat (XEP-0045) and publishes what native occupants write; each remote person speaks through a puppet JID
 * on the bridge domain, with the nickname "Name (Agency)". The stanzas a delivery posts have ids derived from
 * it, and a delivery handled again looks in the room's archive for what it posted before (postedBefore).
 */
import type { Logger } from "pino";
import type { Delivery } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { FedgateError, PermanentError, TransientError } from "../../schemas/contract/errors.js";
import { parseDirectConversation } from "../../schemas/contract/directConversations.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
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
import { InputQueue } from "../kit/InputQueue.js";
import {
  attachmentFetchOptions,
  fetchAttachment,
  type FetchAttachmentOptions,
} from "../kit/fetchAttachment.js";
import type { XmppBridgeConfig, XmppStoreRetry } from "./config.types.js";
import { originIdFor } from "./deliveryIds.js";
import { labelFor } from "./securityLabels.js";
import { NS } from "./namespaces.js";
import { fromNativeId, toNativeMessage } from "./messageIds.js";
import {
  referenceId,
  toFileMessage,
  toMessage,
  withBody,
  type MessageAddress,
  type Quote,
} from "./toStanza.js";
import { discoverUploadService, requestSlot, upload } from "./httpUpload.js";
import { puppetJid } from "./puppetJid.js";
import { nickCandidates, puppetNick } from "./nicks.js";
import { xml, XmppComponent, type XmlElement } from "./XmppComponent.js";
import { RoomArchive } from "./RoomArchive.js";
import { RoomCatchUp } from "./RoomCatchUp.js";
import { RoomEchoes, REFLECTION_TIMEOUT_MS } from "./RoomEchoes.js";
import { postedBefore, type PostedBeforeDeps } from "./postedBefore.js";
import { storedWith, type Stored } from "./stored.js";
import { bareJid, isPuppetJid } from "./jids.js";
import { MucRooms } from "./MucRooms.js";
import { RecentMessages } from "./RecentMessages.js";
import { Refusals } from "./refusals.js";
import { Reactions } from "./Reactions.js";
import { NativePublisher } from "./NativePublisher.js";
import { RoomInbound } from "./RoomInbound.js";
import { DirectInbound } from "./DirectInbound.js";

/** The bridge's own state: per room, the last stanza-id bridged. */
const STATE_BUCKET = "fedgate_xmpp_state";

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
  private readonly recent = new RecentMessages();
  private readonly refusals: Refusals;
  private readonly reactions: Reactions;
  private readonly roomInbound: RoomInbound;
  private readonly directInbound: DirectInbound;

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
      this.roomInbound.publishMembership(type, room, nick, occupant),
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
        this.roomInbound.bridge(message, room, nick, archiveId, archivedJid),
    });
    this.refusals = new Refusals(component, log);
    this.reactions = new Reactions({ state, runtime, instance: config.instance, component, log });
    const publisher = new NativePublisher({
      runtime,
      config,
      reactions: this.reactions,
      recent: this.recent,
      log,
    });
    const inbound = { publisher, refusals: this.refusals, recent: this.recent, stored: this.stored, log };
    this.roomInbound = new RoomInbound({
      ...inbound,
      config,
      maxWaiting: config.storeRetry.maxWaiting,
      botJid: this.botJid,
      rooms: this.rooms,
      archive: this.archive,
      echoes: this.echoes,
      catchUp: this.catchUp,
      perRoom: this.perRoom,
      runtime,
    });
    this.directInbound = new DirectInbound({
      ...inbound,
      config,
      maxWaiting: config.storeRetry.maxWaiting,
      perDirect: this.perDirect,
      links,
      runtime,
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

  private receive(stanza: XmlElement): void {
    try {
      if (stanza.name === "presence") this.rooms.onPresence(stanza);
      else if (stanza.name === "message") this.onMessage(stanza);
    } catch (error) {
      this.log.warn({ err: error, from: stanza.attrs["from"] }, "stanza refused");
    }
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
      this.directInbound.receive(stanza, to);
      return;
    }
    this.roomInbound.receive(stanza);
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
      await this.reactions.deliver(delivery, reaction, reactingTo, puppet, address);
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
    return id === undefined ? undefined : this.recent.textOf(delivery.target.conversation, id);
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
    const sender = answered === undefined ? undefined : this.recent.senderOf(answered);
    if (sender === undefined) return;
    await this.refusals.refuse(
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
