/** Direct chats' rooms, both ways, kept in the state bucket so that a restart remembers them. */
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";

export class DirectChatStore {
  constructor(private readonly state: KeyValueStore) {}

  async remember(room: string, conversation: string): Promise<void> {
    await this.state.put(roomKey(room), encodeJson(conversation));
    await this.state.put(chatKey(conversation), encodeJson(room));
  }

  /** The direct conversation remembered for a room. */
  async conversationOf(room: string): Promise<string | undefined> {
    const entry = await this.state.get(roomKey(room));
    return entry === undefined ? undefined : (decodeJson(entry.value) as string);
  }

  /** The room remembered for a direct conversation. */
  async roomOf(conversation: string): Promise<string | undefined> {
    const entry = await this.state.get(chatKey(conversation));
    return entry === undefined ? undefined : (decodeJson(entry.value) as string);
  }

  /** Forgets the room as the conversation's, and the conversation's room if it is still this one. */
  async forget(room: string, conversation: string): Promise<void> {
    await this.state.delete(roomKey(room));
    if ((await this.roomOf(conversation)) === room) await this.state.delete(chatKey(conversation));
  }
}

function roomKey(room: string): string {
  return `direct.room.${keyToken(room)}`;
}

function chatKey(conversation: string): string {
  return `direct.chat.${keyToken(conversation)}`;
}
