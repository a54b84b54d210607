/**
 * What the core decided for each message it routed, kept so that what relates to the message later (an edit,
 * a reply, a reaction, a deletion) is judged by the original: who wrote it, its effective marking, which
 * conversations hold it, and which were denied it by its marking.
 *
 * Keys in fedgate_deliveries: `e.<eventId>` (event ids are key-safe by the schema) → LedgerEntry.
 */
import { decodeJson, encodeJson, type KeyValueStore } from "../../platform/bus/KeyValueStore.js";

export interface LedgerEntry {
  /** Who wrote the message: network/instance/userId. */
  author: string;
  /** The conversation it was written in (network/instance/conversation). */
  source: string;
  /** Its effective marking; where that could not be determined, the marking it claimed. */
  marking?: string;
  /** Conversations that hold it: where it was written and every target it was delivered to. */
  reached: string[];
  /** Conversations it was withheld from by its marking (or by the marking of what it relates to). */
  withheld: string[];
}

export class DeliveryLedger {
  constructor(private readonly kv: KeyValueStore) {}

  /** Stores the entry of a routed message; routing the same event again writes the same entry. */
  async record(eventId: string, entry: LedgerEntry): Promise<void> {
    await this.kv.put(`e.${eventId}`, encodeJson(entry));
  }

  /** The entry of a message the core routed, or undefined when it never routed one with this id. */
  async get(eventId: string): Promise<LedgerEntry | undefined> {
    const stored = await this.kv.get(`e.${eventId}`);
    return stored === undefined ? undefined : (decodeJson(stored.value) as LedgerEntry);
  }
}
