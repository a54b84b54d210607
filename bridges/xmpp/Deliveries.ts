/**
 * Deliveries posted as the sender's puppet: into a linked room, or to the native participant of a direct
 * chat, with their files uploaded, their reactions as sets, and the gateway's own notices said by the bot.
 */
import type { Logger } from "pino";
import type { Delivery } from "../../schemas/types.js";
import { FedgateError, PermanentError, TransientError } from "../../schemas/contract/errors.js";
import { parseDirectConversation } from "../../schemas/contract/directConversations.js";
import {
  type AdapterRuntime,
  type NativeMessage,
  type NativeRelations,
  type Unsupported,
  unsupported,
} from "../kit/AdapterRuntime.js";
import { isGatewayNotice } from "../kit/isGatewayNotice.js";
import type { XmppBridgeConfig } from "./config.types.js";
import { originIdFor } from "./deliveryIds.js";
import type { FileUploads } from "./FileUploads.js";
import { fromNativeId, toNativeMessage } from "./messageIds.js";
import type { MucRooms } from "./MucRooms.js";
import { nickCandidates, puppetNick } from "./nicks.js";
import { postedBefore, type PostedBeforeDeps } from "./postedBefore.js";
import { puppetJid } from "./puppetJid.js";
import type { Reactions } from "./Reactions.js";
import type { RecentMessages } from "./RecentMessages.js";
import type { Refusals } from "./refusals.js";
import { REFLECTION_TIMEOUT_MS, type RoomEchoes } from "./RoomEchoes.js";
import { labelFor } from "./securityLabels.js";
import {
  referenceId,
  toFileMessage,
  toMessage,
  withBody,
  type MessageAddress,
  type Quote,
} from "./toStanza.js";
import type { XmlElement, XmppComponent } from "./XmppComponent.js";

export interface DeliveriesDeps {
  config: Pick<XmppBridgeConfig, "instance" | "domain" | "labels">;
  botJid: string;
  component: Pick<XmppComponent, "send">;
  runtime: Pick<AdapterRuntime, "identities">;
  rooms: Pick<MucRooms, "join" | "leave">;
  echoes: Pick<RoomEchoes, "expect" | "forget">;
  postedBefore: PostedBeforeDeps;
  reactions: Pick<Reactions, "deliver">;
  uploads: Pick<FileUploads, "uploadFiles">;
  recent: Pick<RecentMessages, "textOf" | "senderOf">;
  refusals: Pick<Refusals, "refuse">;
  log: Logger;
}

export class Deliveries {
  constructor(private readonly deps: DeliveriesDeps) {}

  /**
   * Posts a delivery as the sender's puppet, into its room or to the native participant of a direct chat;
   * returns the ids the message has there.
   */
  async deliver(
    delivery: Delivery,
    relations: NativeRelations,
  ): Promise<NativeMessage | Unsupported | undefined> {
    const { target, event } = delivery;
    const { type, to } = destination(delivery);
    // Derived from the delivery: handled again, it posts under the same ids (see postedBefore).
    const messageId = originIdFor(delivery.id, 0);
    const puppet = puppetJid(
      event.source.network,
      event.source.instance,
      event.sender.userId,
      this.deps.config,
    );
    const fullJid = `${puppet}/fedgate`;
    const address: MessageAddress = { type, to, from: fullJid, id: messageId };
    const reaction = event.content?.reaction;
    if ((event.type === "reaction.added" || event.type === "reaction.removed") && reaction !== undefined) {
      const reactingTo =
        relations.reactsTo === undefined ? undefined : referenceId(relations.reactsTo, type, "other");
      if (reactingTo === undefined) return undefined;
      await this.present(delivery, fullJid, puppet, type);
      await this.deps.reactions.deliver(delivery, reaction, reactingTo, puppet, address);
      return undefined;
    }
    if (event.type === "member.left") {
      if (type === "groupchat") await this.deps.rooms.leave(target.conversation, fullJid);
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
      await this.sayNotice(delivery, relations, { ...address, from: this.deps.botJid });
      return undefined;
    }
    const label = labelFor(delivery.marking, this.deps.config.labels);
    // Files first: a transient failure retries the delivery before anything of it reached the conversation.
    const files =
      event.type === "message.created"
        ? await this.deps.uploads.uploadFiles(delivery, fullJid)
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
        this.deps.log.info(
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
      for (const stanza of stanzas) await this.deps.component.send(stanza);
      return created ? toNativeMessage({ originId: messageId, author: puppet }) : undefined;
    }
    const { stanzaId } = await this.postToRoom(delivery, fullJid, stanzas, messageId);
    return created
      ? toNativeMessage({
          originId: messageId,
          author: puppet,
          ...(stanzaId === undefined ? {} : { stanzaId }),
        })
      : undefined;
  }

  /**
   * Posts a delivery's stanzas into its room as `fullJid`, but for those an earlier attempt posted already
   * (see postedBefore); resolves with the stanza-id the room gave the first, `messageId`, once echoed.
   */
  private async postToRoom(
    delivery: Delivery,
    fullJid: string,
    stanzas: XmlElement[],
    messageId: string,
  ): Promise<{ stanzaId: string | undefined }> {
    const room = delivery.target.conversation;
    const posted = await postedBefore(
      this.deps.postedBefore,
      delivery,
      fullJid,
      stanzas.map((stanza) => stanza.attrs["id"] ?? ""),
    );
    // The room's echo is the only receipt a component gets: undefined when none came in time.
    const echoed = posted.has(messageId)
      ? Promise.resolve({ stanzaId: posted.get(messageId) })
      : this.deps.echoes.expect(room, messageId);
    try {
      for (const stanza of stanzas)
        if (!posted.has(stanza.attrs["id"] ?? "")) await this.deps.component.send(stanza);
      const echo = await echoed;
      // Written to a server going down, a stanza may be lost without a word: the delivery is handed out
      // again, and postedBefore asks the room's archive whether it got there after all.
      if (echo === undefined)
        throw new TransientError(
          "FG_PEER_UNAVAILABLE",
          `the room ${room} did not echo the message within ${String(REFLECTION_TIMEOUT_MS)} ms`,
          { detail: { deliveryId: delivery.id } },
        );
      return echo;
    } finally {
      if (!posted.has(messageId)) this.deps.echoes.forget(room, messageId);
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
    return id === undefined ? undefined : this.deps.recent.textOf(delivery.target.conversation, id);
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
        : await postedBefore(this.deps.postedBefore, delivery, address.from, [address.id]);
    if (notice !== undefined && !posted.has(address.id)) await this.deps.component.send(notice);
    const answered = delivery.event.relations?.replyTo;
    const sender = answered === undefined ? undefined : this.deps.recent.senderOf(answered);
    if (sender === undefined) return;
    await this.deps.refusals.refuse(
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
      await this.deps.rooms
        .join(target.conversation, fullJid, nickCandidates(puppetNick(delivery)))
        .catch((error: unknown) => {
          throw error instanceof FedgateError ? error : new PermanentError("FG_PEER_REFUSED", String(error));
        });
    }
    await this.deps.runtime.identities.record(
      {
        ...event.sender,
        network: event.source.network,
        instance: event.source.instance,
        ...(senderAgency === undefined ? {} : { agency: senderAgency.id, agencyName: senderAgency.name }),
      },
      { network: "xmpp", instance: this.deps.config.instance, userId: puppet },
    );
  }
}

/** Where a delivery goes: a linked room, or the native participant of a direct chat. */
function destination(delivery: Delivery): { type: MessageAddress["type"]; to: string } {
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
