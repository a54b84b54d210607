/**
 * The chat a delivery goes to: a linked chat, or, for a direct chat, an encrypted conversation of the service
 * account and the officer, opened once and remembered.
 */
import type { Delivery } from "../../schemas/types.js";
import { parseDirectConversation } from "../../schemas/contract/directConversations.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import { chatConversation, parseChatConversation } from "./chatConversations.js";
import { newKey, wrapChatKey } from "./crypto.js";
import type { ChatCursors } from "./ChatCursors.js";
import type { DirectChatStore } from "./DirectChatStore.js";
import type { ChatRef } from "./messages.js";
import type { StashcatClient } from "./StashcatClient.js";

export interface DirectChatsDeps {
  client: Pick<StashcatClient, "userId" | "userInfo" | "createEncryptedConversation">;
  store: Pick<DirectChatStore, "chatOf" | "remember">;
  cursors: Pick<ChatCursors, "save">;
  log: Logger;
}

export class DirectChats {
  constructor(private readonly deps: DirectChatsDeps) {}

  /** The chat a delivery goes to: a linked one, or the encrypted conversation of a direct chat, opened once. */
  async chatOf(delivery: Delivery): Promise<ChatRef> {
    const { target } = delivery;
    const linked = parseChatConversation(target.conversation);
    if ((target.kind ?? "room") === "room") {
      if (linked === undefined)
        throw new PermanentError("FG_EVENT_INVALID", `${target.conversation} is not a Stashcat chat`);
      return linked;
    }
    return (await this.deps.store.chatOf(target.conversation)) ?? (await this.open(target.conversation));
  }

  private async open(conversation: string): Promise<ChatRef> {
    const { client, store, cursors, log } = this.deps;
    const direct = parseDirectConversation(conversation);
    const memberId = Number(direct?.participant);
    if (direct === undefined || !Number.isSafeInteger(memberId) || memberId <= 0)
      throw new PermanentError("FG_EVENT_INVALID", `${conversation} is not a direct chat of this Stashcat`);
    const member = await client.userInfo(memberId);
    if (member.publicKey === undefined)
      throw new PermanentError(
        "FG_PEER_REFUSED",
        `Stashcat user ${String(memberId)} has no key to encrypt for`,
      );
    const me = await client.userInfo(client.userId);
    const chatKey = newKey();
    const members = [
      { id: client.userId, key: wrapChatKey(chatKey, me.publicKey ?? "") },
      { id: memberId, key: wrapChatKey(chatKey, member.publicKey) },
    ];
    const { id } = await client.createEncryptedConversation(members);
    // The server may answer with a conversation of these members that exists already, and its key: the
    // key is read back, not assumed.
    const chat: ChatRef = { type: "conversation", id };
    await store.remember(chat, conversation);
    // From now on the chat is caught up like a linked one.
    await cursors.save(chat, 0);
    log.info({ chat: chatConversation(chat) }, "Stashcat conversation opened for a direct chat");
    return chat;
  }
}
