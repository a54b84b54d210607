/**
 * Every id a message has: the gateway event id and, per conversation it reached, its native id there.
 * Adapters read it to turn relations (reply, edit, delete, reaction) into native ids and back.
 *
 * Keys in fedgate_messages: `e.<eventId>.<token(conversation)>` → native id;
 * `n.<token(conversation)>.<token(nativeId)>` → event id.
 */
import { conversationKey, type ConversationRef } from "./LinkStore.js";
import {
  decodeJson,
  encodeJson,
  KeyExistsError,
  keyToken,
  type KeyValueStore,
} from "../bus/KeyValueStore.js";

export class MessageMap {
  constructor(private readonly kv: KeyValueStore) {}

  /**
   * Records that event `eventId` is message `nativeId` in `conversation`. A network that gives one message
   * several ids (XMPP: the sender's id and the room's stanza-id) passes the others as aliases: each of them
   * finds the event too; `packed` says `nativeId` only packs the others (XMPP keeps both ids and the author in
   * it), which no native reference names, so only the aliases get keys. Idempotent. A native id already naming
   * another event keeps naming it: ids come from native input, and a sender who reuses someone else's id must
   * not take over that message's edits, retractions and replies. Resolves with the ids that were refused for
   * that reason.
   */
  async record(
    eventId: string,
    conversation: ConversationRef,
    nativeId: string,
    aliases: string[] = [],
    packed = false,
  ): Promise<string[]> {
    const where = keyToken(conversationKey(conversation));
    const finders = packed && aliases.length > 0 ? aliases : [nativeId, ...aliases];
    const [, ...claims] = await Promise.all([
      this.kv.put(`e.${eventId}.${where}`, encodeJson(nativeId)),
      ...[...new Set(finders)].map((id) => this.claim(`n.${where}.${keyToken(id)}`, eventId, id)),
    ]);
    return claims.filter((id): id is string => id !== undefined);
  }

  /** Creates the key for `eventId`; resolves with `id` when it names another event already. */
  private async claim(key: string, eventId: string, id: string): Promise<string | undefined> {
    try {
      await this.kv.create(key, encodeJson(eventId));
      return undefined;
    } catch (error) {
      if (!(error instanceof KeyExistsError)) throw error;
      const entry = await this.kv.get(key);
      return entry === undefined || decodeJson(entry.value) === eventId ? undefined : id;
    }
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
