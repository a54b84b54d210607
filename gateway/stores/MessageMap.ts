/**
 * Every id a message has: the gateway event id and, per conversation it reached, its native id there.
 * Adapters read it to turn relations (reply, edit, delete, reaction) into native ids and back.
 *
 * Keys in fedgate_messages: `e.<eventId>.<token(conversation)>` → native id;
 * `n.<token(conversation)>.<token(nativeId)>` → event id.
 */
import { conversationKey, type ConversationRef } from "./LinkStore.js";
import { decodeJson, encodeJson, keyToken, type KeyValueStore } from "./KeyValueStore.js";

export class MessageMap {
  constructor(private readonly kv: KeyValueStore) {}

  /**
   * Records that event `eventId` is message `nativeId` in `conversation`. A network that gives one message
   * several ids (XMPP: the sender's id and the room's stanza-id) passes the others as aliases: each of them
   * finds the event too. Idempotent.
   */
  async record(
    eventId: string,
    conversation: ConversationRef,
    nativeId: string,
    aliases: string[] = [],
  ): Promise<void> {
    const where = keyToken(conversationKey(conversation));
    await Promise.all([
      this.kv.put(`e.${eventId}.${where}`, encodeJson(nativeId)),
      ...[nativeId, ...aliases].map((id) => this.kv.put(`n.${where}.${keyToken(id)}`, encodeJson(eventId))),
    ]);
  }

  async nativeId(eventId: string, conversation: ConversationRef): Promise<string | undefined> {
    const entry = await this.kv.get(`e.${eventId}.${keyToken(conversationKey(conversation))}`);
    return entry === undefined ? undefined : (decodeJson(entry.value) as string);
  }

  async eventId(conversation: ConversationRef, nativeId: string): Promise<string | undefined> {
    const entry = await this.kv.get(`n.${keyToken(conversationKey(conversation))}.${keyToken(nativeId)}`);
    return entry === undefined ? undefined : (decodeJson(entry.value) as string);
  }
}
