/**
 * What the core decided for each message it routed, kept so that what relates to the message later (an edit,
 * a reply, a reaction, a deletion) is judged by the original: who wrote it, its effective marking, which
 * conversations hold it, and which were denied it by its marking.
 *
 * It also answers what became of the message (GET /v1/events/{id}): the decisions are part of the entry,
 * written once per routed message, in few bytes (every message has one: the targets delivered to are `reached`
 * already, so only denials name theirs), and a delivery that failed for good, or that its target network cannot
 * show, is recorded on its own, written only then (a delivery made is in the message map).
 *
 * Keys in fedgate_deliveries: `e.<eventId>` (event ids are key-safe by the schema) → LedgerEntry;
 * `o.<eventId>.<token(target conversation)>` → DeliveryOutcome (failed or unsupported).
 */
import type { DecisionReason, DeliveryOutcome, NormalisedEvent } from "../../../schemas/types.js";
import { decodeJson, encodeJson, keyToken, type KeyValueStore } from "../../platform/bus/KeyValueStore.js";
import { conversationKey, type ConversationRef } from "../../platform/stores/LinkStore.js";

/** Event types others can relate to (edit, answer, react to, delete): their routing goes in the ledger. */
export const LEDGER_TYPES: ReadonlySet<string> = new Set<NormalisedEvent["type"]>([
  "message.created",
  "message.edited",
  "notice",
]);

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
  /**
   * When the core decided, in milliseconds since the epoch. Absent in entries written before the ledger kept
   * decisions: of those, `type` and `denied` say nothing.
   */
  at?: number;
  /** The event's type, where it is not message.created (as most are, which spend no bytes on it). */
  type?: string;
  /** The targets denied it (network/instance/conversation), each with the reason; absent when none was. */
  denied?: Record<string, DecisionReason>;
}

/** An entry's `denied` for the decisions made: nothing when no target was denied. */
export function deniedIn(
  decided: { target: ConversationRef; verdict: { decision: string; reason: DecisionReason } }[],
): Pick<LedgerEntry, "denied"> {
  const denied = decided.filter((d) => d.verdict.decision === "deny");
  return denied.length === 0
    ? {}
    : { denied: Object.fromEntries(denied.map((d) => [conversationKey(d.target), d.verdict.reason])) };
}

/** The event type of an entry written with `at`. */
export function typeOf(entry: LedgerEntry): string {
  return entry.type ?? "message.created";
}

/** What the ledger records of a delivery: only what went wrong; the message map knows what was delivered. */
export type RecordedOutcome = DeliveryOutcome & { state: "failed" | "unsupported" };

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

  /** Records what went wrong with the delivery of `eventId` to `target` (a conversation key). */
  async recordOutcome(eventId: string, target: string, outcome: RecordedOutcome): Promise<void> {
    await this.kv.put(outcomeKey(eventId, target), encodeJson(outcome));
  }

  /** What went wrong with the delivery of `eventId` to `target`, or undefined when nothing was recorded. */
  async outcome(eventId: string, target: string): Promise<RecordedOutcome | undefined> {
    const stored = await this.kv.get(outcomeKey(eventId, target));
    return stored === undefined ? undefined : (decodeJson(stored.value) as RecordedOutcome);
  }
}

function outcomeKey(eventId: string, target: string): string {
  return `o.${eventId}.${keyToken(target)}`;
}
