/**
 * What the bridge itself did to Stashcat messages for the other networks, kept in the state bucket: its likes
 * and its deletions, so that what Stashcat tells back of them is known as the bridge's own and not as news.
 */
import { decodeJson, encodeJson, type KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";

export class OwnActionStore {
  constructor(private readonly state: KeyValueStore) {}

  /** How many reactions from elsewhere the bridge's like on the message stands for. */
  async likesOf(messageId: number): Promise<number> {
    const entry = await this.state.get(likesKey(messageId));
    return entry === undefined ? 0 : (decodeJson(entry.value) as number);
  }

  async setLikes(messageId: number, count: number): Promise<void> {
    await this.state.put(likesKey(messageId), encodeJson(count));
  }

  /** Whether the bridge likes the message (for servers that do not say so in the message's `liked`). */
  async liked(messageId: number): Promise<boolean> {
    return (await this.likesOf(messageId)) > 0;
  }

  async noteDeleted(messageId: number): Promise<void> {
    await this.state.put(deletedKey(messageId), encodeJson(true));
  }

  /** Whether the bridge deleted the message itself, for a deletion elsewhere: that is no news to bring back. */
  async deleted(messageId: number): Promise<boolean> {
    return (await this.state.get(deletedKey(messageId))) !== undefined;
  }
}

function likesKey(messageId: number): string {
  return `likes.out.${String(messageId)}`;
}

function deletedKey(messageId: number): string {
  return `deleted.out.${String(messageId)}`;
}
