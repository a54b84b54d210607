/** How Stashcat and its chats are named: as an endpoint's conversation, and in the state bucket's keys. */
import type { ChatRef } from "./messages.js";

/** The network's name, as links and events spell it. */
export const NETWORK = "stashcat";

/** A chat as an endpoint's conversation names it: `channel:1001`, `conversation:2001`. */
export function chatConversation(chat: ChatRef): string {
  return `${chat.type}:${String(chat.id)}`;
}

export function parseChatConversation(conversation: string): ChatRef | undefined {
  const match = /^(channel|conversation):([1-9][0-9]{0,15})$/.exec(conversation);
  if (match === null) return undefined;
  return { type: match[1] as ChatRef["type"], id: Number(match[2]) };
}

/** A chat's conversation in a KV key (which allows no colon): `channel.1001`. */
export function stateKeyOfConversation(conversation: string): string {
  return conversation.replace(":", ".");
}

export function stateKeyOf(chat: ChatRef): string {
  return stateKeyOfConversation(chatConversation(chat));
}

/** The chat a state key names (`channel.1001`), the inverse of stateKeyOf. */
export function chatOfStateKey(key: string): ChatRef | undefined {
  return parseChatConversation(key.replace(".", ":"));
}
