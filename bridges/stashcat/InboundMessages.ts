/**
 * Inbound: what officers write in bridged chats, from the push channel or a catch-up, published on the bus
 * decrypted, each message once; of a message seen before, only its deletion and its likes are news.
 */
import { isTransient, PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import type { AdapterRuntime } from "../kit/AdapterRuntime.js";
import type { ChatCursors } from "./ChatCursors.js";
import type { ChatKeys } from "./ChatKeys.js";
import { chatConversation, NETWORK } from "./chatConversations.js";
import type { StashcatBridgeConfig } from "./config.types.js";
import { decryptText } from "./crypto.js";
import type { DirectChatStore } from "./DirectChatStore.js";
import { eventBaseOf, fromStashcatMessage } from "./fromStashcatMessage.js";
import type { InboundLikes } from "./InboundLikes.js";
import { parseMessage, type ChatRef, type StashcatMessage } from "./messages.js";
import type { MessageFiles } from "./MessageFiles.js";
import type { OwnActionStore } from "./OwnActionStore.js";
import type { Retries } from "./Retries.js";
import type { StashcatClient } from "./StashcatClient.js";

/**
 * Who deleted a message the bridge posted for another network: a manager of the chat, whom Stashcat does not
 * name. The core lets a deletion from a conversation other than the message's own come from a moderator.
 */
const MODERATION_SENDER = { userId: "moderation", displayName: "Stashcat moderation" };

export interface InboundMessagesDeps {
  client: Pick<StashcatClient, "userId">;
  runtime: Pick<AdapterRuntime, "messages" | "eventIdOf" | "publish" | "deadLetter">;
  links: Pick<LinkStore, "resolve">;
  cursors: Pick<ChatCursors, "last" | "bridged">;
  chatKeys: Pick<ChatKeys, "of">;
  files: Pick<MessageFiles, "describe">;
  directChats: Pick<DirectChatStore, "conversationOf">;
  ownActions: Pick<OwnActionStore, "deleted">;
  likes: Pick<InboundLikes, "publish">;
  retries: Pick<Retries, "stopping" | "pause">;
  log: Logger;
}

export class InboundMessages {
  constructor(
    private readonly config: Pick<StashcatBridgeConfig, "instance" | "maxBodyBytes">,
    private readonly deps: InboundMessagesDeps,
  ) {}

  /** A pushed message, parsed; a broken one is refused (undefined). */
  parsePushed(raw: unknown): StashcatMessage | undefined {
    try {
      return parseMessage(raw);
    } catch (error) {
      void this.refuse("push", raw, error);
      return undefined;
    }
  }

  /**
   * One message, from the push channel or a catch-up: published once, or refused with a dead letter. A
   * passing failure (NATS or Stashcat away) is retried, with a growing pause, before the chat's next
   * message: a later message bridged first would move the catch-up past this one, and it would be lost.
   * Stopping ends the retries without marking it bridged, so the next start reads it again.
   */
  async receive(message: StashcatMessage, raw: unknown, via: "push" | "catch-up"): Promise<void> {
    const { links, cursors, retries, log } = this.deps;
    const where = chatConversation(message.chat);
    for (let attempt = 1; !retries.stopping; attempt++) {
      try {
        const conversation = await this.conversationOf(message.chat);
        if ((await links.resolve(this.ref(conversation))) === undefined) return;
        await this.publishMessage(message, conversation);
        await cursors.bridged(message, via);
        return;
      } catch (error) {
        if (!isTransient(error)) {
          // The last bridged id stays: a pushed id cannot move the catch-up past messages not yet read. A
          // refused message read again later gives the same dead letter, which the bus stores once.
          await this.refuse(where, raw, error, `${where}/${String(message.id)}`);
          return;
        }
        log.warn(
          { err: error, chat: where, messageId: message.id, attempt },
          "Stashcat message not bridged yet; retrying",
        );
        await retries.pause(attempt);
      }
    }
  }

  private ref(conversation: string): { network: string; instance: string; conversation: string } {
    return { network: NETWORK, instance: this.config.instance, conversation };
  }

  /** The endpoint conversation of a chat: the chat itself, or the direct chat the bridge opened in it. */
  private async conversationOf(chat: ChatRef): Promise<string> {
    return (await this.deps.directChats.conversationOf(chat)) ?? chatConversation(chat);
  }

  /** Logs a refused message and tells the bus, with the reason: nothing of it reaches another messenger. */
  private async refuse(where: string, raw: unknown, error: unknown, dedupeId?: string): Promise<void> {
    const { runtime, log } = this.deps;
    log.warn({ err: error, chat: where }, "Stashcat message refused");
    await runtime.deadLetter(where, raw, error, dedupeId).catch((cause: unknown) => {
      log.error({ err: cause }, "dead letter for a refused Stashcat message could not be stored");
    });
  }

  /**
   * A message new to the bus is published; of one seen before (an officer's, or one the bridge posted for
   * another network) only what changed is news: its deletion and its likes.
   */
  private async publishMessage(message: StashcatMessage, conversation: string): Promise<void> {
    const { client, runtime, cursors, chatKeys, files, ownActions, likes } = this.deps;
    const ref = this.ref(conversation);
    const nativeId = String(message.id);
    const posted = message.senderId === client.userId;
    let known = await runtime.messages.eventId(ref, nativeId);
    // The message map is written before the event is published: an officer's message known there but past
    // the catch-up point may have been cut off in between (a crash) and is published again, under the
    // same event id, which the bus stores once.
    if (known !== undefined && !posted && !message.deleted && message.id > (await cursors.last(message.chat)))
      known = undefined;
    const base = eventBaseOf(message, this.config.instance, conversation);
    if (known !== undefined) {
      if (message.deleted && !(await ownActions.deleted(message.id)))
        await runtime.publish({
          ...base,
          // A message the bridge posted was someone's elsewhere: here only a manager can have deleted it.
          ...(posted ? { sender: MODERATION_SENDER } : {}),
          id: runtime.eventIdOf(`deleted ${nativeId}`),
          type: "message.deleted",
          relations: { redacts: known },
        });
      await likes.publish(message, known, base);
      return;
    }
    // What the bridge posts is recorded as the delivery of another network's message; one not (yet)
    // recorded has nothing new to tell.
    if (posted || message.deleted) return;
    if (message.kind !== "message")
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `a Stashcat entry of kind ${message.kind} is not a message`,
      );
    const text = message.encrypted
      ? decryptText(message.text, message.iv ?? "", await chatKeys.of(message.chat))
      : message.text;
    if (Buffer.byteLength(text, "utf8") > this.config.maxBodyBytes)
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `the message text is larger than ${String(this.config.maxBodyBytes)} bytes`,
      );
    const attachments = await Promise.all(message.fileIds.map((id) => files.describe(id, message.chat)));
    const replyTo =
      message.replyTo === undefined
        ? undefined
        : await runtime.messages.eventId(ref, String(message.replyTo));
    const event = fromStashcatMessage(message, {
      id: runtime.eventIdOf(nativeId),
      instance: this.config.instance,
      conversation,
      text,
      attachments,
      ...(replyTo === undefined ? {} : { replyTo }),
    });
    await runtime.publish(event);
    await likes.publish(message, event.id, base);
  }
}
