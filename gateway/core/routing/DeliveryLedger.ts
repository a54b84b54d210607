/**
 * What the core decided for each message it routed, kept so that what relates to the message later (an edit,
 * a reply, a reaction, a deletion) is judged by the original: who wrote it, its effective marking, which
 * conversations hold it, and which were denied it by its marking.
 *
 * It also answers what became of the message (GET /v1/events/{id}): the decision per target is part of the
 * entry, written once per routed message, and a delivery that failed for good is recorded on its own, written
 * only when one fails.
 *
 * Keys in fedgate_deliveries: `e.<eventId>` (event ids are key-safe by the schema) → LedgerEntry;
 * `f.<eventId>.<token(target conversation)>` → DeliveryFailure.
 */
import type { DecisionReason } from "../../../schemas/types.js";
import { decodeJson, encodeJson, keyToken, type KeyValueStore } from "../../platform/bus/KeyValueStore.js";

/** The decision for one target, as the core made it. */
export interface LedgerDecision {
  /** The target conversation (network/instance/conversation). */
  target: string;
  /** The agency that owns it. */
  agency: string;
  decision: "deliver" | "deny";
  reason: DecisionReason;
  /** The effective marking decided on, when it could be determined. */
  marking?: string;
}

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
  /** The event's type; absent in entries written before the ledger kept decisions. */
  type?: string;
  /** When the core decided; absent as `type` is. */
  decidedAt?: string;
  /** The decision per target; absent as `type` is. */
  decisions?: LedgerDecision[];
}

/** A delivery dead-lettered by the target's bridge: the error code and when. Never the error's text. */
export interface DeliveryFailure {
  code: string;
  failedAt: string;
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

  /** Records that the delivery of `eventId` to `target` (a conversation key) failed for good. */
  async recordFailure(eventId: string, target: string, failure: DeliveryFailure): Promise<void> {
    await this.kv.put(failureKey(eventId, target), encodeJson(failure));
  }

  /** The failure of the delivery of `eventId` to `target`, or undefined when none was recorded. */
  async failure(eventId: string, target: string): Promise<DeliveryFailure | undefined> {
    const stored = await this.kv.get(failureKey(eventId, target));
    return stored === undefined ? undefined : (decodeJson(stored.value) as DeliveryFailure);
  }
}

function failureKey(eventId: string, target: string): string {
  return `f.${eventId}.${keyToken(target)}`;
}
