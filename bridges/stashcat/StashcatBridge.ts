/**
 * The Stashcat bridge: reads and writes as one service account, since Stashcat has no puppets. What
 * officers write in linked channels and conversations reaches the bus decrypted; what the core delivers is
 * encrypted for the chat and posted with the sender's name and agency leading the text.
 *
 * New messages arrive through the push channel. After every (re)connection and at start, each linked chat
 * is read from the last message bridged (`message/content`), so nothing is lost while the push channel or
 * the bridge was down; message ids already in the message map are skipped, so nothing is doubled. The
 * catch-ups of a connection are queued before any of its pushes is handled, so a pushed message never moves
 * a chat's catch-up point past messages written while the channel was down.
 */
import type { KeyObject } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { NormalisedEvent } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { KeyedSequencer } from "../../gateway/platform/bus/KeyedSequencer.js";
import { isTransient, PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import { AdapterRuntime, type DeliverySettings } from "../kit/AdapterRuntime.js";
import { CatchUpCursors } from "../kit/CatchUpCursors.js";
import { stashcatCapabilities } from "./capabilities.js";
import type { LoadedStashcatConfig } from "./config.js";
import type { StashcatBridgeConfig } from "./config.types.js";
import { decryptText, unlockPrivateKey } from "./crypto.js";
import { eventBaseOf, fromStashcatMessage } from "./fromStashcatMessage.js";
import { parseMessage, StashcatClient, type ChatRef, type StashcatMessage } from "./StashcatClient.js";
import {
  chatConversation,
  parseChatConversation,
  stateKeyOf,
  stateKeyOfConversation,
} from "./chatConversations.js";
import { StashcatPush } from "./StashcatPush.js";
import { Deliveries } from "./Deliveries.js";
import { DirectChats } from "./DirectChats.js";
import { Outbox } from "./Outbox.js";
import { ChatKeys } from "./ChatKeys.js";
import { MessageFiles } from "./MessageFiles.js";
import { DirectChatStore } from "./DirectChatStore.js";
import { OwnActionStore } from "./OwnActionStore.js";
import { LikesSeenStore, likesNowSeen } from "./LikesSeenStore.js";
import { sessionStore } from "./SessionStore.js";

const NETWORK = "stashcat";
/** The session, the last message bridged per chat, direct chats and likes: what a restart must not forget. */
const STATE_BUCKET = "fedgate_stashcat_state";
/** Messages read per `message/content` call while catching up. */
const PAGE = 50;
/** Longest pause between two attempts at a message that failed in passing. */
const RETRY_MAX_MS = 15_000;
/** Likes are Stashcat's only reaction; every reaction from elsewhere becomes one. */
const LIKE = "👍";
/** Who "likes" on the other networks: Stashcat does not say who liked. */
const LIKES_SENDER = { userId: "likes", displayName: "Stashcat" };
/**
 * Who deleted a message the bridge posted for another network: a manager of the chat, whom Stashcat does not
 * name. The core lets a deletion from a conversation other than the message's own come from a moderator.
 */
const MODERATION_SENDER = { userId: "moderation", displayName: "Stashcat moderation" };

export class StashcatBridge {
  private readonly perChat = new KeyedSequencer();
  /** Per chat, the id of the last message bridged; keyed as the bridge always kept it (`last.channel.1001`). */
  private readonly cursors: CatchUpCursors<number>;
  private readonly directChats: DirectChatStore;
  private readonly ownActions: OwnActionStore;
  private readonly likesSeen: LikesSeenStore;
  /**
   * Chats (`channel.1001`) whose last catch-up failed for good: what was written while the push channel was
   * down is unread, so pushed messages do not move their catch-up point until a catch-up succeeds.
   */
  private readonly behind = new Set<string>();
  /**
   * The lowest message id pushed per chat (`channel.1001`) since the push channel's latest connection was
   * ready: where a chat seen for the first time starts, so that what is pushed but not yet handled when
   * its starting point is stored is not taken for history.
   */
  private readonly firstPushed = new Map<string, number>();
  /** Resolves once the catch-ups of the push channel's latest connection are queued; its pushes wait for it. */
  private catchUpsQueued: Promise<void> = Promise.resolve();
  private push: StashcatPush | undefined;
  private readonly chatKeys: ChatKeys;
  private readonly files: MessageFiles;
  private readonly deliveries: Deliveries;
  private stopping = false;
  /** Ends the pauses between retries at once when the bridge stops. */
  private readonly stopped = new AbortController();

  private constructor(
    private readonly config: StashcatBridgeConfig,
    private readonly client: StashcatClient,
    privateKey: KeyObject,
    private readonly runtime: AdapterRuntime,
    private readonly links: LinkStore,
    private readonly state: KeyValueStore,
    outbox: Outbox,
    fileLinkKey: Buffer,
    private readonly log: Logger,
  ) {
    this.cursors = new CatchUpCursors(state, stateKeyOfConversation);
    this.directChats = new DirectChatStore(state);
    this.ownActions = new OwnActionStore(state);
    this.likesSeen = new LikesSeenStore(state);
    this.chatKeys = new ChatKeys(client, privateKey);
    this.files = new MessageFiles(config, fileLinkKey, { client, chatKeys: this.chatKeys, log });
    this.deliveries = new Deliveries(config, {
      client,
      chatKeys: this.chatKeys,
      directChats: new DirectChats({ client, store: this.directChats, cursors: this.cursors, log }),
      ownActions: this.ownActions,
      outbox,
      log,
    });
  }

  static async start(
    bus: Bus,
    loaded: LoadedStashcatConfig,
    log: Logger,
    deliveries: DeliverySettings = {},
  ): Promise<StashcatBridge> {
    const { config } = loaded;
    const runtime = await AdapterRuntime.open(bus, {
      capabilities: stashcatCapabilities,
      network: NETWORK,
      instance: config.instance,
      log,
      ...deliveries,
    });
    const links = runtime.links;
    const state = await bus.keyValue(STATE_BUCKET);
    const outbox = await Outbox.open(bus);
    try {
      const client = await StashcatClient.connect({
        apiUrl: config.apiUrl,
        email: config.email,
        password: loaded.password,
        deviceId: config.deviceId,
        appName: config.appName,
        log,
        sessionStore: sessionStore(state),
      });
      const privateKey = unlockPrivateKey(await client.lockedPrivateKey(), loaded.encryptionPassword);
      const bridge = new StashcatBridge(
        config,
        client,
        privateKey,
        runtime,
        links,
        state,
        outbox,
        MessageFiles.linkKeyOf(loaded.password),
        log,
      );
      await bridge.files.listen();
      await runtime.consumeDeliveries((delivery, relations) =>
        bridge.deliveries.deliver(delivery, relations),
      );
      bridge.push = await StashcatPush.connect({
        pushUrl: config.pushUrl,
        deviceId: config.deviceId,
        client,
        log,
        onMessage: (raw) => {
          bridge.onPush(raw);
        },
        onReady: () => {
          bridge.onPushReady();
        },
      });
      return bridge;
    } catch (error) {
      await runtime.close();
      throw error;
    }
  }

  private ref(conversation: string): { network: string; instance: string; conversation: string } {
    return { network: NETWORK, instance: this.config.instance, conversation };
  }

  // ---------------------------------------------------------------- inbound: officers' messages

  /**
   * A pushed message: handled in its chat's order, after the catch-ups of the connection it came on are
   * queued (so after the chat's catch-up).
   */
  private onPush(raw: unknown): void {
    let message: StashcatMessage;
    try {
      message = parseMessage(raw);
    } catch (error) {
      void this.refuse("push", raw, error);
      return;
    }
    const conversation = chatConversation(message.chat);
    const key = stateKeyOf(message.chat);
    this.firstPushed.set(key, Math.min(this.firstPushed.get(key) ?? message.id, message.id));
    void this.catchUpsQueued.then(() => {
      this.perChat.run(conversation, () => this.receive(message, raw, "push"));
    });
  }

  /**
   * The push channel is (again) authenticated: every bridged chat is caught up before anything this
   * connection pushes is handled. Listing the chats waits for the bus; the pushes wait with it.
   */
  private onPushReady(): void {
    this.firstPushed.clear();
    this.catchUpsQueued = this.queueCatchUps();
  }

  /** Queues a catch-up of every bridged chat; retries the listing (the bus away) until it succeeds or the bridge stops. */
  private async queueCatchUps(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        for (const chat of await this.bridgedChats()) this.queueCatchUp(chat);
        return;
      } catch (error) {
        this.log.warn({ err: error, attempt }, "Stashcat chats to catch up not listed yet; retrying");
        await this.pause(attempt);
      }
    }
  }

  /**
   * Queues a chat's catch-up in its queue. A failure in passing (the bus or Stashcat away) is retried before
   * the chat's next message; a lasting one leaves the chat behind, logged, until a later catch-up succeeds.
   */
  private queueCatchUp(chat: ChatRef): void {
    const where = chatConversation(chat);
    this.perChat.run(where, async () => {
      for (let attempt = 1; !this.stopping; attempt++) {
        try {
          await this.catchUpChat(chat);
          this.behind.delete(stateKeyOf(chat));
          return;
        } catch (error) {
          if (!isTransient(error)) {
            this.behind.add(stateKeyOf(chat));
            this.log.error(
              { err: error, chat: where },
              "Stashcat catch-up failed; the chat is read again at the next reconnection or start",
            );
            return;
          }
          this.log.warn({ err: error, chat: where, attempt }, "Stashcat catch-up not done yet; retrying");
          await this.pause(attempt);
        }
      }
    });
  }

  private async catchUpChat(chat: ChatRef): Promise<void> {
    const stored = await this.cursors.get(chatConversation(chat));
    if (stored === undefined) {
      // First sight of the chat: its history is not bridged, only what comes from now on, which includes
      // what was pushed since the channel was ready and is still queued behind this.
      const [newest] = (await this.client.messages(chat, { limit: 1 })).slice(-1);
      const pushed = this.firstPushed.get(stateKeyOf(chat));
      await this.saveLast(chat, Math.min(newest?.id ?? 0, pushed === undefined ? Infinity : pushed - 1));
      return;
    }
    let after = stored;
    let caught = 0;
    while (!this.stopping) {
      const page = await this.client.messages(chat, { limit: PAGE, afterMessageId: after });
      for (const message of page) {
        await this.receive(message, message, "catch-up");
        after = Math.max(after, message.id);
        caught++;
      }
      if (page.length < PAGE) break;
    }
    if (caught > 0)
      this.log.info({ chat: chatConversation(chat), messages: caught }, "Stashcat chat caught up");
  }

  /** Waits before attempt `attempt + 1`: longer each time, up to RETRY_MAX_MS; at once when the bridge stops. */
  private async pause(attempt: number): Promise<void> {
    await sleep(Math.min(RETRY_MAX_MS, 250 * 2 ** attempt), undefined, { signal: this.stopped.signal }).catch(
      () => undefined,
    );
  }

  /** Linked chats of this instance, and the conversations the bridge opened for direct chats. */
  private async bridgedChats(): Promise<ChatRef[]> {
    const chats = new Map<string, ChatRef>();
    for (const chat of await this.directChats.chats()) chats.set(chatConversation(chat), chat);
    for (const { endpoint } of this.links.endpointsOf(NETWORK, this.config.instance)) {
      const chat = parseChatConversation(endpoint.conversation);
      if (chat !== undefined) chats.set(chatConversation(chat), chat);
    }
    return [...chats.values()];
  }

  /** The endpoint conversation of a chat: the chat itself, or the direct chat the bridge opened in it. */
  private async conversationOf(chat: ChatRef): Promise<string> {
    return (await this.directChats.conversationOf(chat)) ?? chatConversation(chat);
  }

  /**
   * One message, from the push channel or a catch-up: published once, or refused with a dead letter. A
   * passing failure (NATS or Stashcat away) is retried, with a growing pause, before the chat's next
   * message: a later message bridged first would move the catch-up past this one, and it would be lost.
   * Stopping ends the retries without marking it bridged, so the next start reads it again.
   */
  private async receive(message: StashcatMessage, raw: unknown, via: "push" | "catch-up"): Promise<void> {
    const where = chatConversation(message.chat);
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        const conversation = await this.conversationOf(message.chat);
        if ((await this.links.resolve(this.ref(conversation))) === undefined) return;
        await this.publishMessage(message, conversation);
        // A push moves the catch-up point only where nothing before it is left unread.
        if (via === "catch-up" || !this.behind.has(stateKeyOf(message.chat))) await this.markBridged(message);
        return;
      } catch (error) {
        if (!isTransient(error)) {
          // The last bridged id stays: a pushed id cannot move the catch-up past messages not yet read. A
          // refused message read again later gives the same dead letter, which the bus stores once.
          await this.refuse(where, raw, error, `${where}/${String(message.id)}`);
          return;
        }
        this.log.warn(
          { err: error, chat: where, messageId: message.id, attempt },
          "Stashcat message not bridged yet; retrying",
        );
        await this.pause(attempt);
      }
    }
  }

  /** Moves the chat's catch-up point forward; kept in memory too, as every message passes here. */
  private async markBridged(message: StashcatMessage): Promise<void> {
    const last = await this.lastOf(message.chat);
    if (message.id > last) await this.saveLast(message.chat, message.id);
  }

  /** The chat's catch-up point: the last message bridged (0 for none). */
  private async lastOf(chat: ChatRef): Promise<number> {
    return (await this.cursors.get(chatConversation(chat))) ?? 0;
  }

  private async saveLast(chat: ChatRef, id: number): Promise<void> {
    await this.cursors.set(chatConversation(chat), id);
  }

  /** Logs a refused message and tells the bus, with the reason: nothing of it reaches another messenger. */
  private async refuse(where: string, raw: unknown, error: unknown, dedupeId?: string): Promise<void> {
    this.log.warn({ err: error, chat: where }, "Stashcat message refused");
    await this.runtime.deadLetter(where, raw, error, dedupeId).catch((cause: unknown) => {
      this.log.error({ err: cause }, "dead letter for a refused Stashcat message could not be stored");
    });
  }

  /**
   * A message new to the bus is published; of one seen before (an officer's, or one the bridge posted for
   * another network) only what changed is news: its deletion and its likes.
   */
  private async publishMessage(message: StashcatMessage, conversation: string): Promise<void> {
    const ref = this.ref(conversation);
    const nativeId = String(message.id);
    const posted = message.senderId === this.client.userId;
    let known = await this.runtime.messages.eventId(ref, nativeId);
    // The message map is written before the event is published: an officer's message known there but past
    // the catch-up point may have been cut off in between (a crash) and is published again, under the
    // same event id, which the bus stores once.
    if (known !== undefined && !posted && !message.deleted && message.id > (await this.lastOf(message.chat)))
      known = undefined;
    const base = eventBaseOf(message, this.config.instance, conversation);
    if (known !== undefined) {
      if (message.deleted && !(await this.ownActions.deleted(message.id)))
        await this.runtime.publish({
          ...base,
          // A message the bridge posted was someone's elsewhere: here only a manager can have deleted it.
          ...(posted ? { sender: MODERATION_SENDER } : {}),
          id: this.runtime.eventIdOf(`deleted ${nativeId}`),
          type: "message.deleted",
          relations: { redacts: known },
        });
      await this.publishLikes(message, known, base);
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
      ? decryptText(message.text, message.iv ?? "", await this.chatKeys.of(message.chat))
      : message.text;
    if (Buffer.byteLength(text, "utf8") > this.config.maxBodyBytes)
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `the message text is larger than ${String(this.config.maxBodyBytes)} bytes`,
      );
    const attachments = await Promise.all(message.fileIds.map((id) => this.files.describe(id, message.chat)));
    const replyTo =
      message.replyTo === undefined
        ? undefined
        : await this.runtime.messages.eventId(ref, String(message.replyTo));
    const event = fromStashcatMessage(message, {
      id: this.runtime.eventIdOf(nativeId),
      instance: this.config.instance,
      conversation,
      text,
      attachments,
      ...(replyTo === undefined ? {} : { replyTo }),
    });
    await this.runtime.publish(event);
    await this.publishLikes(message, event.id, base);
  }

  /**
   * Stashcat says how many liked a message, not who: the likes are one reaction of one stable sender, added
   * when the first like comes and taken back when the last goes. A person per like would invent people (and a
   * ghost account or puppet for each, on every other network); a count in the reaction would make every
   * further like a new reaction on the other networks, and still name no one. The bridge's own like stands
   * for reactions from elsewhere (changeLike), so it is not counted: it would only come back as an echo.
   */
  private async publishLikes(
    message: StashcatMessage,
    eventId: string,
    base: Pick<NormalisedEvent, "specVersion" | "source" | "timestamp">,
  ): Promise<void> {
    const ownLike = message.liked ?? (await this.ownActions.liked(message.id));
    const likes = Math.max(0, message.likes - (ownLike ? 1 : 0));
    const seen = await this.likesSeen.seen(message.chat, message.id);
    const now = likesNowSeen(seen, likes);
    if (now.turns !== seen.turns) {
      // Each coming or going of the likes is an event of its own, the same however often it is read: the
      // count of turns is stored only after the publish, so a retry publishes the same id.
      await this.runtime.publish({
        ...base,
        id: this.runtime.eventIdOf(`likes ${String(message.id)} ${String(now.turns)}`),
        type: likes > 0 ? "reaction.added" : "reaction.removed",
        sender: LIKES_SENDER,
        content: { reaction: LIKE },
        relations: { reactsTo: eventId },
      });
    }
    if (now.likes !== seen.likes || now.turns !== seen.turns)
      await this.likesSeen.remember(message.chat, message.id, now);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await this.push?.stop();
    // Pushes held for a catch-up listing join their queues once it ends; then every queue runs out.
    await this.catchUpsQueued;
    await this.perChat.idle();
    await this.files.close();
    await this.runtime.close();
  }
}
