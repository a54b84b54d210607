/** The chats' keys for the service account: unwrapped with its private key once per chat, then held. */
import type { KeyObject } from "node:crypto";
import { PermanentError } from "../../schemas/contract/errors.js";
import { chatConversation } from "./chatConversations.js";
import { unwrapChatKey } from "./crypto.js";
import type { ChatRef } from "./messages.js";
import type { StashcatClient } from "./StashcatClient.js";

export class ChatKeys {
  /** Chat keys, opened once: by chat conversation. */
  private readonly keys = new Map<string, Buffer>();

  constructor(
    private readonly client: Pick<StashcatClient, "chatKeyField">,
    private readonly privateKey: KeyObject,
  ) {}

  /** A chat's key for this account; FG_DECRYPTION_FAILED when the chat gives it none. */
  async of(chat: ChatRef): Promise<Buffer> {
    const name = chatConversation(chat);
    let key = this.keys.get(name);
    if (key === undefined) {
      const wrapped = await this.client.chatKeyField(chat);
      if (wrapped === undefined || wrapped === "")
        throw new PermanentError("FG_DECRYPTION_FAILED", `${name} has no key for this account`);
      key = unwrapChatKey(wrapped, this.privateKey);
      this.keys.set(name, key);
    }
    return key;
  }
}
