/**
 * Per chat, where its catch-up starts: the last message bridged, kept in the state bucket, and what the push
 * channel's latest connection says of it, kept in memory.
 */
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import { CatchUpCursors } from "../kit/CatchUpCursors.js";
import { chatConversation, stateKeyOf, stateKeyOfConversation } from "./chatConversations.js";
import type { ChatRef, StashcatMessage } from "./messages.js";

export class ChatCursors {
  /** Per chat, the id of the last message bridged; keyed as the bridge always kept it (`last.channel.1001`). */
  private readonly cursors: CatchUpCursors<number>;
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

  constructor(state: KeyValueStore) {
    this.cursors = new CatchUpCursors(state, stateKeyOfConversation);
  }

  /** The chat's catch-up point: the last message bridged; undefined for a chat never seen. */
  stored(chat: ChatRef): Promise<number | undefined> {
    return this.cursors.get(chatConversation(chat));
  }

  /** The chat's catch-up point: the last message bridged (0 for none). */
  async last(chat: ChatRef): Promise<number> {
    return (await this.stored(chat)) ?? 0;
  }

  async save(chat: ChatRef, id: number): Promise<void> {
    await this.cursors.set(chatConversation(chat), id);
  }

  /** Stores where a chat seen for the first time starts, given its newest message's id. */
  async start(chat: ChatRef, newest: number | undefined): Promise<void> {
    await this.save(chat, startingPoint(newest, this.firstPushed.get(stateKeyOf(chat))));
  }

  /**
   * Moves the chat's catch-up point forward to a message bridged; kept in memory too, as every message passes
   * here. A push moves it only where nothing before it is left unread.
   */
  async bridged(message: StashcatMessage, via: "push" | "catch-up"): Promise<void> {
    if (via === "push" && this.behind.has(stateKeyOf(message.chat))) return;
    const last = await this.last(message.chat);
    if (message.id > last) await this.save(message.chat, message.id);
  }

  /** The push channel's connection is (again) ready: what it pushes from now on is counted afresh. */
  connected(): void {
    this.firstPushed.clear();
  }

  pushed(message: StashcatMessage): void {
    const key = stateKeyOf(message.chat);
    this.firstPushed.set(key, Math.min(this.firstPushed.get(key) ?? message.id, message.id));
  }

  caughtUp(chat: ChatRef): void {
    this.behind.delete(stateKeyOf(chat));
  }

  fellBehind(chat: ChatRef): void {
    this.behind.add(stateKeyOf(chat));
  }
}

/** Where a chat seen for the first time starts: at its newest message, or before the first one pushed. */
export function startingPoint(newest: number | undefined, firstPushed: number | undefined): number {
  return Math.min(newest ?? 0, firstPushed === undefined ? Infinity : firstPushed - 1);
}
