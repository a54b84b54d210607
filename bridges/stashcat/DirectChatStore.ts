/**
 * The encrypted conversations the bridge opened for direct chats, both ways, kept in the state bucket so that
 * a restart remembers them (and catches them up like linked chats).
 */
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";
import { chatOfStateKey, stateKeyOf } from "./chatConversations.js";
import type { ChatRef } from "./messages.js";

const CHAT_PREFIX = "direct.chat.";

export class DirectChatStore {
  constructor(private readonly state: KeyValueStore) {}

  async remember(chat: ChatRef, conversation: string): Promise<void> {
    await this.state.put(chatKey(chat), encodeJson(conversation));
    await this.state.put(conversationKey(conversation), encodeJson(chat));
  }

  /** The direct conversation the bridge opened the chat for. */
  async conversationOf(chat: ChatRef): Promise<string | undefined> {
    const entry = await this.state.get(chatKey(chat));
    return entry === undefined ? undefined : (decodeJson(entry.value) as string);
  }

  /** The chat the bridge opened for a direct conversation. */
  async chatOf(conversation: string): Promise<ChatRef | undefined> {
    const entry = await this.state.get(conversationKey(conversation));
    return entry === undefined ? undefined : (decodeJson(entry.value) as ChatRef);
  }

  /** Every chat the bridge opened for a direct conversation. */
  async chats(): Promise<ChatRef[]> {
    const keys = await this.state.keys(`${CHAT_PREFIX}>`);
    return keys.flatMap((key) => chatOfStateKey(key.slice(CHAT_PREFIX.length)) ?? []);
  }
}

function chatKey(chat: ChatRef): string {
  return `${CHAT_PREFIX}${stateKeyOf(chat)}`;
}

function conversationKey(conversation: string): string {
  return `direct.conversation.${keyToken(conversation)}`;
}
