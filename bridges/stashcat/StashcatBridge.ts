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
import { createHash, type KeyObject } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { Delivery, NormalisedEvent } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { KeyedSequencer } from "../../gateway/platform/bus/KeyedSequencer.js";
import { parseDirectConversation } from "../../schemas/contract/directConversations.js";
import { isTransient, PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import {
  encodeJson,
  KeyExistsError,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import { AdapterRuntime, type DeliverySettings, type NativeRelations } from "../kit/AdapterRuntime.js";
import { carryAttachments } from "../kit/carryAttachments.js";
import { CatchUpCursors } from "../kit/CatchUpCursors.js";
import { isGatewayNotice } from "../kit/isGatewayNotice.js";
import { stashcatCapabilities } from "./capabilities.js";
import { attachmentFetchOptions, fetchAttachment } from "../kit/fetchAttachment.js";
import type { LoadedStashcatConfig } from "./config.js";
import type { StashcatBridgeConfig } from "./config.types.js";
import { decryptText, encryptBytes, encryptText, newKey, unlockPrivateKey, wrapChatKey } from "./crypto.js";
import { eventBaseOf, fromStashcatMessage } from "./fromStashcatMessage.js";
import { toStashcatText } from "./toStashcatText.js";
import { parseMessage, StashcatClient, type ChatRef, type StashcatMessage } from "./StashcatClient.js";
import {
  chatConversation,
  parseChatConversation,
  stateKeyOf,
  stateKeyOfConversation,
} from "./chatConversations.js";
import { StashcatPush } from "./StashcatPush.js";
import { ChatKeys } from "./ChatKeys.js";
import { MessageFiles } from "./MessageFiles.js";
import { DirectChatStore } from "./DirectChatStore.js";
import { OwnActionStore } from "./OwnActionStore.js";
import { LikesSeenStore, likesNowSeen } from "./LikesSeenStore.js";
import { sessionStore } from "./SessionStore.js";

const NETWORK = "stashcat";
/** The session, the last message bridged per chat, direct chats and likes: what a restart must not forget. */
const STATE_BUCKET = "fedgate_stashcat_state";
/** The deliveries the bridge began to post, by delivery id: a second handling looks for the first's message. */
const OUTBOX_BUCKET = "fedgate_stashcat_sent";
/** How long a delivery is remembered there: longer than it can wait for a redelivery. */
const OUTBOX_TTL_MS = 7 * 24 * 3600 * 1000;
/** The bridge's latest messages in a chat searched for a delivery posted before a crash. */
const POSTED_SEARCH = 100;
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
    private readonly outbox: KeyValueStore,
    fileLinkKey: Buffer,
    private readonly log: Logger,
  ) {
    this.cursors = new CatchUpCursors(state, stateKeyOfConversation);
    this.directChats = new DirectChatStore(state);
    this.ownActions = new OwnActionStore(state);
    this.likesSeen = new LikesSeenStore(state);
    this.chatKeys = new ChatKeys(client, privateKey);
    this.files = new MessageFiles(config, fileLinkKey, { client, chatKeys: this.chatKeys, log });
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
    const outbox = await bus.keyValue(OUTBOX_BUCKET, { ttlMs: OUTBOX_TTL_MS });
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
      await runtime.consumeDeliveries((delivery, relations) => bridge.deliver(delivery, relations));
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

  // ---------------------------------------------------------------- outbound: deliveries as the service account

  private async deliver(delivery: Delivery, relations: NativeRelations): Promise<string | undefined> {
    const { event } = delivery;
    const chat = await this.chatOf(delivery);
    const ownNotice = isGatewayNotice(delivery);
    switch (event.type) {
      case "message.deleted":
        if (relations.redacts !== undefined) {
          const messageId = Number(relations.redacts);
          // Noted first, so that the deletion Stashcat pushes back is known as the bridge's own.
          await this.ownActions.noteDeleted(messageId);
          await this.client.deleteMessage(messageId);
        }
        return undefined;
      case "reaction.added":
      case "reaction.removed":
        if (relations.reactsTo !== undefined)
          await this.changeLike(Number(relations.reactsTo), event.type === "reaction.added");
        return undefined;
      default:
        break;
    }
    const files =
      event.type === "message.created" ? await this.uploadFiles(event, chat) : { ids: [], missing: [] };
    const text = toStashcatText(delivery, { fromGateway: ownNotice, missingFiles: files.missing });
    const replyTo = relations.replyTo ?? relations.replaces;
    const sealed = encryptText(text, await this.chatKeys.of(chat));
    const marker = deliveryMarker(delivery.id);
    const postedBefore = await this.postedBefore(delivery.id, chat, marker);
    if (postedBefore !== undefined) return String(postedBefore);
    const sent = await this.client.send(chat, {
      verification: marker,
      text: sealed.text,
      iv: sealed.iv,
      encrypted: true,
      fileIds: files.ids,
      markdown: true,
      ...(replyTo === undefined ? {} : { replyTo: Number(replyTo) }),
    });
    return String(sent.id);
  }

  /**
   * The message a delivery became when it was handled before and the bridge died before its ack (or its
   * record): found by the delivery's marker among the account's latest messages in the chat. The first
   * handling notes the delivery in the outbox, so only a second one searches.
   */
  private async postedBefore(deliveryId: string, chat: ChatRef, marker: string): Promise<number | undefined> {
    try {
      await this.outbox.create(keyToken(deliveryId), encodeJson(marker));
      return undefined;
    } catch (error) {
      if (!(error instanceof KeyExistsError)) throw error;
    }
    const recent = await this.client.messages(chat, { limit: POSTED_SEARCH });
    const found = recent.find((m) => m.senderId === this.client.userId && m.verification === marker);
    if (found !== undefined)
      this.log.info(
        { chat: chatConversation(chat), messageId: found.id },
        "Stashcat delivery was posted before",
      );
    return found?.id;
  }

  /** Likes by the service account stand for every remote reaction: liked while any remains. */
  private async changeLike(messageId: number, added: boolean): Promise<void> {
    const before = await this.ownActions.likesOf(messageId);
    const after = Math.max(0, before + (added ? 1 : -1));
    if (before === 0 && after > 0) await this.client.like(messageId);
    if (before > 0 && after === 0) await this.client.unlike(messageId);
    await this.ownActions.setLikes(messageId, after);
  }

  /** Files are encrypted with a key of their own, which is sealed for the chat (Stashcat's file-key scheme). */
  private async uploadFiles(
    event: NormalisedEvent,
    chat: ChatRef,
  ): Promise<{ ids: number[]; missing: string[] }> {
    const { carried, notCarried } = await carryAttachments(
      event,
      async (attachment) => {
        const bytes = await fetchAttachment(attachment, attachmentFetchOptions(this.config.attachments));
        const fileKey = newKey();
        const sealed = encryptBytes(bytes, fileKey);
        const fileId = await this.client.uploadFile(chat, {
          name: attachment.name,
          mediaType: attachment.mediaType,
          data: sealed.data,
          iv: sealed.iv.toString("hex"),
        });
        const wrapped = encryptBytes(fileKey, await this.chatKeys.of(chat));
        await this.client.setFileAccessKey(
          fileId,
          chat,
          wrapped.data.toString("hex"),
          wrapped.iv.toString("hex"),
        );
        return fileId;
      },
      this.log,
      "Stashcat",
    );
    return {
      ids: carried.map((c) => c.result),
      missing: notCarried.map((n) => n.attachment.name),
    };
  }

  /** The chat a delivery goes to: a linked one, or the encrypted conversation of a direct chat, opened once. */
  private async chatOf(delivery: Delivery): Promise<ChatRef> {
    const { target } = delivery;
    const linked = parseChatConversation(target.conversation);
    if ((target.kind ?? "room") === "room") {
      if (linked === undefined)
        throw new PermanentError("FG_EVENT_INVALID", `${target.conversation} is not a Stashcat chat`);
      return linked;
    }
    const known = await this.directChats.chatOf(target.conversation);
    if (known !== undefined) return known;
    const direct = parseDirectConversation(target.conversation);
    const memberId = Number(direct?.participant);
    if (direct === undefined || !Number.isSafeInteger(memberId) || memberId <= 0)
      throw new PermanentError(
        "FG_EVENT_INVALID",
        `${target.conversation} is not a direct chat of this Stashcat`,
      );
    const member = await this.client.userInfo(memberId);
    if (member.publicKey === undefined)
      throw new PermanentError(
        "FG_PEER_REFUSED",
        `Stashcat user ${String(memberId)} has no key to encrypt for`,
      );
    const me = await this.client.userInfo(this.client.userId);
    const chatKey = newKey();
    const members = [
      { id: this.client.userId, key: wrapChatKey(chatKey, me.publicKey ?? "") },
      { id: memberId, key: wrapChatKey(chatKey, member.publicKey) },
    ];
    const { id } = await this.client.createEncryptedConversation(members);
    // The server may answer with a conversation of these members that exists already, and its key: the
    // key is read back, not assumed.
    const chat: ChatRef = { type: "conversation", id };
    await this.directChats.remember(chat, target.conversation);
    // From now on the chat is caught up like a linked one.
    await this.saveLast(chat, 0);
    this.log.info({ chat: chatConversation(chat) }, "Stashcat conversation opened for a direct chat");
    return chat;
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

/**
 * What marks the message a delivery became, in its `verification` (where Stashcat's web client puts an MD5
 * checksum of its own, so that it looks like one): the same for every handling of the delivery.
 */
function deliveryMarker(deliveryId: string): string {
  return createHash("md5").update(`fedgate delivery\0${deliveryId}`).digest("hex");
}
