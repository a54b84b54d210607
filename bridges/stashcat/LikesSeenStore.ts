/** What the bridge saw of Stashcat messages' likes, kept in the state bucket so that a restart tells no change twice. */
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";
import { chatConversation } from "./chatConversations.js";
import type { ChatRef } from "./messages.js";

/** What the bridge saw of a message's likes: the count, and how often they came or went. */
export interface LikesSeen {
  likes: number;
  turns: number;
}

export class LikesSeenStore {
  constructor(private readonly state: KeyValueStore) {}

  async seen(chat: ChatRef, messageId: number): Promise<LikesSeen> {
    const entry = await this.state.get(key(chat, messageId));
    const stored = entry === undefined ? 0 : (decodeJson(entry.value) as LikesSeen | number);
    // Before likes were one sender's, only the count was kept.
    return typeof stored === "number" ? { likes: stored, turns: 0 } : stored;
  }

  async remember(chat: ChatRef, messageId: number, seen: LikesSeen): Promise<void> {
    await this.state.put(key(chat, messageId), encodeJson(seen));
  }
}

/** What is seen once a message has `likes`: one turn more when the likes came or went. */
export function likesNowSeen(before: LikesSeen, likes: number): LikesSeen {
  const turned = likes > 0 !== before.likes > 0;
  return { likes, turns: turned ? before.turns + 1 : before.turns };
}

function key(chat: ChatRef, messageId: number): string {
  return `likes.in.${keyToken(`${chatConversation(chat)}/${String(messageId)}`)}`;
}
