/**
 * What becomes of an event that relates to a message the ledger does not hold: one past the message horizon
 * (gateway.messageHorizonDays), or one the core never routed. The two look the same, and an id can be made
 * up, so the event is given no more than a plain message from its sender would get, and the sender is never
 * told off for it: the message is merely old.
 *
 * - An edit becomes a new message, marked as an edit of an earlier one (see earlierEdits.ts).
 * - A reply loses its relation: judged, marked and delivered as a plain message. Adapters never carry the
 *   quote a native reply may hold (the original's marking could not be checked).
 * - A reaction is dropped: alone, "👍" reads as an answer to whatever was said last.
 * - A deletion has nothing to act on: dropped.
 *
 * Dropped events are audited as relation-forgotten for each target.
 */
import type { NormalisedEvent } from "../../../schemas/types.js";
import { asEarlierEdit } from "../../../schemas/contract/earlierEdits.js";
import type { Verdict } from "../policy/PolicyEngine.js";
import type { KnownOriginals, Originals, RelationKind } from "./relations.js";

type Deny = Extract<Verdict, { decision: "deny" }>;

/** The event to route and the originals it relates to, all known; or why it is dropped. */
export type Relating =
  | {
      event: NormalisedEvent;
      originals: KnownOriginals;
      /** For the audit, when the event goes out changed. */
      detail?: string;
    }
  | { dropped: Deny };

const EDIT_DETAIL =
  "Delivered as a new message: the message it edits is not known to fedgate (past the message horizon, or never routed).";
const RELATION_DETAIL =
  "Delivered as a plain message: the message it answers is not known to fedgate (past the message horizon, or never routed).";

function dropped(what: string): { dropped: Deny } {
  return {
    dropped: {
      decision: "deny",
      reason: "relation-forgotten",
      detail: `The message it ${what} is not known to fedgate (past the message horizon, or never routed): nothing to act on.`,
    },
  };
}

/** `event` as it is routed, given which of its originals the ledger holds (null: not held). */
export function withoutForgotten(event: NormalisedEvent, found: Originals): Relating {
  if (found.redacts === null) return dropped("deletes");
  if (found.reactsTo === null) return dropped("reacts to");
  const originals: KnownOriginals = {};
  const relations: Partial<Record<RelationKind, string>> = {};
  for (const [kind, id] of Object.entries(event.relations ?? {}) as [RelationKind, string][]) {
    const original = found[kind];
    if (original === null) continue;
    relations[kind] = id;
    if (original !== undefined) originals[kind] = original;
  }
  const kept = Object.keys(relations).length === 0 ? {} : { relations };
  const { relations: _all, ...rest } = event;
  if (found.replaces === null && event.type === "message.edited")
    return {
      event: { ...rest, ...kept, type: "message.created", content: asEarlierEdit(event.content) },
      originals,
      detail: EDIT_DETAIL,
    };
  if (found.replyTo === null || found.replaces === null)
    return { event: { ...rest, ...kept }, originals, detail: RELATION_DETAIL };
  return { event, originals };
}
