/** What native users write, in a room or a direct chat, published as normalised events. */
import type { Logger } from "pino";
import type { Attachment } from "../../schemas/types.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { ConversationRef } from "../../gateway/platform/stores/LinkStore.js";
import type { AdapterRuntime } from "../kit/AdapterRuntime.js";
import { attachmentFetchOptions, describeAttachment } from "../kit/fetchAttachment.js";
import type { XmppBridgeConfig } from "./config.types.js";
import { fromNativeId, toNativeMessage, type XmppMessageIds } from "./messageIds.js";
import { outOfBandOf } from "./outOfBand.js";
import type { Reactions } from "./Reactions.js";
import type { RecentMessages } from "./RecentMessages.js";
import type { Refusal } from "./refusals.js";
import { markingOf } from "./securityLabels.js";
import { reactionsOf, referencesOf, toNormalisedEvent } from "./toNormalisedEvent.js";
import type { XmlElement } from "./XmppComponent.js";

/** A native message's conversation and sender, as the bridge resolved them. */
export interface NativeChat {
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

export interface NativePublisherDeps {
  runtime: Pick<AdapterRuntime, "messages" | "publish" | "eventIdOf">;
  config: Pick<XmppBridgeConfig, "instance" | "attachments" | "labels" | "maxBodyBytes">;
  reactions: Pick<Reactions, "publish">;
  recent: Pick<RecentMessages, "rememberSender">;
  log: Logger;
}

export class NativePublisher {
  constructor(private readonly deps: NativePublisherDeps) {}

  /**
   * Publishes what a native user wrote, in a room or a direct chat: a message, a correction, a retraction,
   * a reply or reactions. Throws FG_NATIVE_INVALID for what the sender must be told was refused.
   */
  async publish(stanza: XmlElement, chat: NativeChat): Promise<void> {
    const { runtime, config, log } = this.deps;
    const conversation = { network: "xmpp", instance: config.instance, conversation: chat.conversation };
    // Bridged already (seen live and again in the archive, or before a restart): nothing to do.
    if (
      chat.dedupeId !== undefined &&
      (await runtime.messages.eventId(conversation, chat.dedupeId)) !== undefined
    )
      return;
    const eventOf = (nativeId: string | undefined): Promise<string | undefined> =>
      nativeId === undefined ? Promise.resolve(undefined) : runtime.messages.eventId(conversation, nativeId);
    const reactions = reactionsOf(stanza);
    if (reactions !== undefined) {
      const reactsTo = await eventOf(reactions.to);
      if (reactsTo === undefined) {
        log.info({ conversation: chat.conversation }, "reactions to a message fedgate never saw");
        return;
      }
      await this.deps.reactions.publish(chat, reactsTo, reactions);
      return;
    }
    // An unknown label is refused before anything is published; the sender's client shows why (XEP-0258 §5).
    const marking = markingOf(stanza, config.labels);
    const references = referencesOf(stanza);
    const [replaces, redacts, replyTo] = await Promise.all([
      eventOf(references.replaces),
      eventOf(references.retracts),
      eventOf(references.repliesTo),
    ]);
    // Past the message horizon, or never bridged: a retraction has nothing to act on; a correction goes as a
    // new message (see toNormalisedEvent), as the core treats an edit of a message it no longer knows.
    if (references.retracts !== undefined && redacts === undefined) {
      log.info(
        { conversation: chat.conversation, references },
        "retraction of a message fedgate does not know; not bridged",
      );
      return;
    }
    const correctsForgotten = references.replaces !== undefined && replaces === undefined;
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
      instance: config.instance,
      conversation: chat.conversation,
      sender: chat.sender,
      messageId: native?.id,
      ...(marking === undefined ? {} : { marking }),
      ...(replaces === undefined ? {} : { replaces }),
      ...(correctsForgotten ? { correctsForgotten } : {}),
      ...(redacts === undefined ? {} : { redacts }),
      ...(replyTo === undefined ? {} : { replyTo }),
      ...(attachments.length === 0 ? {} : { attachments }),
      // Derived from the dedupe id, so a message seen twice, or published again, is the same event (and
      // stored once).
      newEventId: () => runtime.eventIdOf(chat.conversation, dedupeId),
      maxBodyBytes: config.maxBodyBytes,
    });
    if (event === undefined) return;
    this.deps.recent.rememberSender(event.id, chat.refusal, stanza.attrs["id"]);
    // An id this message gives itself that another message has already keeps naming that message: the
    // message map creates ids, never overwrites them.
    await runtime.publish(event, native ?? {});
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
    const nativeId = await this.deps.runtime.messages.nativeId(eventId, conversation);
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
      return await describeAttachment(url, attachmentFetchOptions(this.deps.config.attachments));
    } catch (cause) {
      throw new PermanentError("FG_NATIVE_INVALID", "a linked file cannot be fetched", {
        cause,
        detail: { condition: "not-acceptable" },
      });
    }
  }
}
