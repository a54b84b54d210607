/**
 * GET /v1/events/{id}: what the core decided for a message it routed, per target conversation, and what became
 * of each delivery. Read from what is stored anyway: the decisions from the ledger (one entry per routed
 * message), delivered from the message map (the target's bridge records the message it created), failed and
 * unsupported from the ledger's outcome records (written only when one happens); the target's agency from the
 * links. Metadata only: no content, and no native message ids, which would be a handle on the message in its
 * network and say nothing more about whether it arrived.
 */
import type { Request, Response } from "express";
import type { DecisionReason, DeliveryOutcome, EventStatus, TargetStatus } from "../../../schemas/types.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import type { MessageMap } from "../../platform/stores/MessageMap.js";
import { type LinkStore, parseConversationKey } from "../../platform/stores/LinkStore.js";
import { type DeliveryLedger, typeOf } from "../routing/DeliveryLedger.js";

/** Where the answer is read from. */
export interface EventStatusSources {
  ledger: DeliveryLedger;
  messages: MessageMap;
  links: LinkStore;
}

// The EventId pattern of common.schema.json: anything else names no event, and must not reach a KV key.
const eventIdPattern = /^[0-9A-Za-z][0-9A-Za-z_-]{7,63}$/;

function eventNotFound(id: string): PermanentError {
  // The id is echoed only when it could be one: the rest is hostile input of any length.
  const named = eventIdPattern.test(id) ? ` ${id}` : "";
  return new PermanentError(
    "FG_EVENT_NOT_FOUND",
    `no routed message with id${named} is known: never routed, or past the message horizon`,
  );
}

/**
 * The status of event `id`. The id is checked against the event id pattern before anything is looked up;
 * FG_EVENT_NOT_FOUND when it is none, or the ledger holds no entry for it (never routed, or expired).
 */
export async function eventStatus(sources: EventStatusSources, id: string): Promise<EventStatus> {
  const entry = eventIdPattern.test(id) ? await sources.ledger.get(id) : undefined;
  const source = entry === undefined ? undefined : parseConversationKey(entry.source);
  if (entry === undefined || source === undefined) throw eventNotFound(id);
  const status: EventStatus = {
    eventId: id,
    source,
    ...(entry.marking === undefined ? {} : { marking: entry.marking }),
    targets: [],
  };
  // An entry from before the ledger kept decisions: where the message is, and no more.
  if (entry.at === undefined) return status;
  const decidedAt = new Date(entry.at).toISOString();
  const decided: [string, DecisionReason][] = [
    ...entry.reached
      .filter((key) => key !== entry.source)
      .map((key): [string, "allowed"] => [key, "allowed"]),
    ...Object.entries(entry.denied ?? {}),
  ];
  const targets = await Promise.all(
    decided.map(([key, reason]) => targetStatus(sources, id, key, reason, decidedAt)),
  );
  return {
    ...status,
    eventType: typeOf(entry),
    decidedAt,
    targets: targets.filter((t): t is TargetStatus => t !== undefined),
  };
}

async function targetStatus(
  sources: EventStatusSources,
  eventId: string,
  targetKey: string,
  reason: DecisionReason,
  decidedAt: string,
): Promise<TargetStatus | undefined> {
  const target = parseConversationKey(targetKey);
  if (target === undefined) return undefined;
  const agency = sources.links.match(target)?.endpoint.agency;
  const deliver = reason === "allowed";
  return {
    target,
    ...(agency === undefined ? {} : { agency }),
    decision: deliver ? "deliver" : "deny",
    reason,
    decidedAt,
    ...(deliver ? { delivery: await outcome(sources, eventId, targetKey, target) } : {}),
  };
}

/**
 * Delivered once the message map has it (a delivery replayed after failing counts), else what the ledger
 * recorded went wrong (failed, unsupported), else pending.
 */
async function outcome(
  sources: EventStatusSources,
  eventId: string,
  targetKey: string,
  target: TargetStatus["target"],
): Promise<DeliveryOutcome> {
  const [nativeId, recorded] = await Promise.all([
    sources.messages.nativeId(eventId, target),
    sources.ledger.outcome(eventId, targetKey),
  ]);
  if (nativeId !== undefined) return { state: "delivered" };
  return recorded ?? { state: "pending" };
}

/** The route's handler. */
export function eventStatusHandler(sources: EventStatusSources) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await eventStatus(sources, String(req.params["id"])));
  };
}
