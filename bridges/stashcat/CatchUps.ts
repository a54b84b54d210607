/**
 * Catching up, and the order the push channel's messages are handled in around it: each chat's messages one
 * at a time, and a connection's pushes only once its catch-ups are queued (see StashcatBridge).
 */
import { KeyedSequencer } from "../../gateway/platform/bus/KeyedSequencer.js";
import { isTransient } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import { catchUpMessages, catchUpRuns } from "../kit/catchUpMetrics.js";
import type { LinkedConversations } from "../kit/LinkedConversations.js";
import type { ChatCursors } from "./ChatCursors.js";
import { chatConversation, parseChatConversation } from "./chatConversations.js";
import type { StashcatBridgeConfig } from "./config.types.js";
import type { DirectChatStore } from "./DirectChatStore.js";
import type { InboundMessages } from "./InboundMessages.js";
import type { ChatRef } from "./messages.js";
import type { Retries } from "./Retries.js";
import type { StashcatClient } from "./StashcatClient.js";

/** Messages read per `message/content` call while catching up. */
const PAGE = 50;

export interface CatchUpsDeps {
  client: Pick<StashcatClient, "messages">;
  linked: Pick<LinkedConversations, "list">;
  directChats: Pick<DirectChatStore, "chats">;
  cursors: Pick<ChatCursors, "stored" | "start" | "connected" | "pushed" | "caughtUp" | "fellBehind">;
  inbound: Pick<InboundMessages, "parsePushed" | "receive">;
  retries: Pick<Retries, "stopping" | "pause">;
  log: Logger;
}

export class CatchUps {
  private readonly perChat = new KeyedSequencer();
  /** Resolves once the catch-ups of the push channel's latest connection are queued; its pushes wait for it. */
  private catchUpsQueued: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: Pick<StashcatBridgeConfig, "instance">,
    private readonly deps: CatchUpsDeps,
  ) {}

  /**
   * A pushed message: handled in its chat's order, after the catch-ups of the connection it came on are
   * queued (so after the chat's catch-up).
   */
  onPush(raw: unknown): void {
    const { cursors, inbound } = this.deps;
    const message = inbound.parsePushed(raw);
    if (message === undefined) return;
    const conversation = chatConversation(message.chat);
    cursors.pushed(message);
    void this.catchUpsQueued.then(() => {
      this.perChat.run(conversation, () => inbound.receive(message, raw, "push"));
    });
  }

  /**
   * The push channel is (again) authenticated: every bridged chat is caught up before anything this
   * connection pushes is handled. Listing the chats waits for the bus; the pushes wait with it.
   */
  onPushReady(): void {
    this.deps.cursors.connected();
    this.catchUpsQueued = this.queueCatchUps();
  }

  /** Resolves when the pushes held for a catch-up listing have joined their queues, and every queue ran out. */
  async idle(): Promise<void> {
    await this.catchUpsQueued;
    await this.perChat.idle();
  }

  /** Queues a catch-up of every bridged chat; retries the listing (the bus away) until it succeeds or the bridge stops. */
  private async queueCatchUps(): Promise<void> {
    const { retries, log } = this.deps;
    for (let attempt = 1; !retries.stopping; attempt++) {
      try {
        for (const chat of await this.bridgedChats()) this.queueCatchUp(chat);
        return;
      } catch (error) {
        log.warn({ err: error, attempt }, "Stashcat chats to catch up not listed yet; retrying");
        await retries.pause(attempt);
      }
    }
  }

  /**
   * Queues a chat's catch-up in its queue. A failure in passing (the bus or Stashcat away) is retried before
   * the chat's next message; a lasting one leaves the chat behind, logged, until a later catch-up succeeds.
   */
  private queueCatchUp(chat: ChatRef): void {
    const { cursors, retries, log } = this.deps;
    const where = chatConversation(chat);
    this.perChat.run(where, async () => {
      for (let attempt = 1; !retries.stopping; attempt++) {
        try {
          await this.catchUpChat(chat);
          cursors.caughtUp(chat);
          catchUpRuns.add(1, { network: "stashcat", outcome: "done" });
          return;
        } catch (error) {
          if (!isTransient(error)) {
            catchUpRuns.add(1, { network: "stashcat", outcome: "failed" });
            cursors.fellBehind(chat);
            log.error(
              { err: error, chat: where },
              "Stashcat catch-up failed; the chat is read again at the next reconnection or start",
            );
            return;
          }
          log.warn({ err: error, chat: where, attempt }, "Stashcat catch-up not done yet; retrying");
          await retries.pause(attempt);
        }
      }
    });
  }

  private async catchUpChat(chat: ChatRef): Promise<void> {
    const { client, cursors, inbound, retries, log } = this.deps;
    const stored = await cursors.stored(chat);
    if (stored === undefined) {
      // First sight of the chat: its history is not bridged, only what comes from now on, which includes
      // what was pushed since the channel was ready and is still queued behind this.
      const [newest] = (await client.messages(chat, { limit: 1 })).slice(-1);
      await cursors.start(chat, newest?.id);
      return;
    }
    let after = stored;
    let caught = 0;
    while (!retries.stopping) {
      const page = await client.messages(chat, { limit: PAGE, afterMessageId: after });
      for (const message of page) {
        await inbound.receive(message, message, "catch-up");
        after = Math.max(after, message.id);
        caught++;
      }
      if (page.length > 0) catchUpMessages.add(page.length, { network: "stashcat" });
      if (page.length < PAGE) break;
    }
    if (caught > 0) log.info({ chat: chatConversation(chat), messages: caught }, "Stashcat chat caught up");
  }

  /** Linked chats of this instance, and the conversations the bridge opened for direct chats. */
  private async bridgedChats(): Promise<ChatRef[]> {
    const { linked, directChats } = this.deps;
    const chats = new Map<string, ChatRef>();
    for (const chat of await directChats.chats()) chats.set(chatConversation(chat), chat);
    for (const { endpoint } of linked.list()) {
      const chat = parseChatConversation(endpoint.conversation);
      if (chat !== undefined) chats.set(chatConversation(chat), chat);
    }
    return [...chats.values()];
  }
}
