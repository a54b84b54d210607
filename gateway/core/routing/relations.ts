/**
 * What an event that relates to an earlier message (an edit, a reply, a reaction, a deletion) may do, judged by
 * that message as the core routed it: an edit is by its author and goes only where the original went; a reply
 * is withheld from wherever the original's marking withheld the original; and what relates to a marked message
 * carries that marking, whatever its sender's client put on it. What relates to a message the ledger does not
 * hold is settled before (forgottenOriginals.ts).
 */
import type { DecisionReason, Endpoint, NormalisedEvent } from "../../../schemas/types.js";
import type { Verdict } from "../policy/PolicyEngine.js";
import type { DeliveryLedger, LedgerEntry } from "./DeliveryLedger.js";
import { conversationKey } from "../../platform/stores/LinkStore.js";

type Deny = Extract<Verdict, { decision: "deny" }>;
export type RelationKind = keyof NonNullable<NormalisedEvent["relations"]>;

/**
 * The originals an event relates to, by relation; null where the ledger does not hold that message (past the
 * message horizon, or never routed).
 */
export type Originals = Partial<Record<RelationKind, LedgerEntry | null>>;
/** The originals an event relates to, every one held by the ledger. */
export type KnownOriginals = Partial<Record<RelationKind, LedgerEntry>>;

/** Relations that act on the original itself: they mean nothing where the original never arrived. */
const ACTING_ON: readonly RelationKind[] = ["replaces", "redacts", "reactsTo"];
/** Relations whose content is about the original, and so inherits its marking (a deletion has no content). */
const ABOUT: readonly RelationKind[] = ["replaces", "reactsTo", "replyTo"];

/**
 * Denials that keep a message from a conversation for what it is (its marking, or what it relates to): a reply
 * to it is kept from that conversation too.
 */
export const WITHHOLDING: ReadonlySet<DecisionReason> = new Set([
  "marking-unknown",
  "marking-conflict",
  "marking-above-route",
  "marking-not-accredited",
  "relation-not-delivered",
  "relation-withheld",
  "not-author",
]);

/** Who wrote an event, as the ledger names authors. */
export function authorOf(event: NormalisedEvent): string {
  return `${event.source.network}/${event.source.instance}/${event.sender.userId}`;
}

/** The ledger entries of what `event` relates to. */
export async function originalsOf(event: NormalisedEvent, ledger: DeliveryLedger): Promise<Originals> {
  const originals: Originals = {};
  const relations: Partial<Record<RelationKind, string>> = event.relations ?? {};
  await Promise.all(
    Object.entries(relations).map(async ([kind, id]) => {
      originals[kind as RelationKind] = (await ledger.get(id)) ?? null;
    }),
  );
  return originals;
}

/** The markings an event inherits from the messages it is about. */
export function inheritedMarkings(originals: KnownOriginals): string[] {
  return ABOUT.flatMap((kind) => {
    const marking = originals[kind]?.marking;
    return marking === undefined ? [] : [marking];
  });
}

function deny(reason: Deny["reason"], detail: string): Deny {
  return { decision: "deny", reason, detail };
}

/** Why `event` may not reach `target` because of what it relates to; undefined when nothing stands in the way. */
export function relationDenial(
  event: NormalisedEvent,
  target: Endpoint,
  originals: KnownOriginals,
): Deny | undefined {
  const author = authorOf(event);
  const edited = originals.replaces;
  if (edited !== undefined && edited.author !== author)
    return deny("not-author", "Only its author may edit a message.");
  const deleted = originals.redacts;
  if (deleted !== undefined && deleted.author !== author && deleted.source !== conversationKey(event.source))
    return deny(
      "not-author",
      "Only its author, or a moderator of the conversation it was written in, may delete a message.",
    );
  // Only what a conversation holds can be answered, edited or reacted to from it: anything else is made up.
  const here = conversationKey(event.source);
  for (const original of Object.values(originals)) {
    if (!original.reached.includes(here))
      return deny(
        "relation-not-delivered",
        "The message it relates to never reached the conversation it comes from.",
      );
  }
  const there = conversationKey(target);
  for (const kind of ACTING_ON) {
    const original = originals[kind];
    if (original !== undefined && !original.reached.includes(there))
      return deny("relation-not-delivered", "The message it relates to never reached this conversation.");
  }
  if (originals.replyTo?.withheld.includes(there) === true)
    return deny("relation-withheld", "The message it answers was withheld from this conversation.");
  return undefined;
}
