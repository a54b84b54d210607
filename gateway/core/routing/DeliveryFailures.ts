/**
 * Deliveries that failed for good: a target's bridge dead-letters a delivery it cannot make (a permanent error,
 * or a transient one past its attempts). The core reads every dead letter with a durable consumer of its own,
 * records the failure in the ledger (for GET /v1/events/{id}), and tells the sender, as it tells a denial: one
 * notice in their conversation, in reply to their message.
 *
 * The notice's id derives from the event and the target, so a dead letter handled twice (a crash before its
 * acknowledgement, or two core replicas) is told once. Only what a person wrote is told (see tellsSender): a
 * notice that cannot be delivered is never answered by another.
 */
import type { Logger } from "pino";
import type { DeadLetter, Delivery } from "../../../schemas/types.js";
import type { Bus, BusMessage, Subscription } from "../../platform/bus/Bus.js";
import { decodeJson } from "../../platform/bus/KeyValueStore.js";
import { validateDeadLetter, validateDelivery } from "../../../schemas/contract/schemas.js";
import { parseOutboundSubject, subjects } from "../../../schemas/contract/subjects.js";
import { conversationKey, type LinkStore } from "../../platform/stores/LinkStore.js";
import type { PolicyEngine } from "../policy/PolicyEngine.js";
import type { DeliveryLedger } from "./DeliveryLedger.js";
import { noticeLine, tellSender, tellsSender } from "./senderNotice.js";

export interface DeliveryFailuresDeps {
  bus: Bus;
  links: LinkStore;
  ledger: DeliveryLedger;
  policy: () => PolicyEngine;
  log: Logger;
  /** gateway.ackWaitMs. */
  ackWaitMs: number;
  /** gateway.maxDeliver: attempts at handling one dead letter (the ledger or the bus briefly away). */
  maxAttempts: number;
}

/** The most of an error's text a sender is shown: its first line, this long at most. */
const MAX_REASON_CHARS = 200;

export class DeliveryFailures {
  private constructor(private readonly subscription: Subscription) {}

  static async start(deps: DeliveryFailuresDeps): Promise<DeliveryFailures> {
    const subscription = await deps.bus.consume(
      {
        stream: "FEDGATE_DEADLETTER",
        durable: "fedgate-core-delivery-failures",
        filterSubject: subjects.deadLetterAll,
        maxAckPending: 1,
        ackWaitMs: deps.ackWaitMs,
        // Dead letters stored before this consumer existed are old news: nobody is told of them now.
        from: "new",
      },
      (message) => handleWith(deps, message),
      { origin: "core", log: deps.log, maxAttempts: deps.maxAttempts },
    );
    return new DeliveryFailures(subscription);
  }

  async stop(): Promise<void> {
    await this.subscription.stop();
  }
}

/** Handles one dead letter: anything but a failed delivery is left alone. */
async function handleWith(deps: DeliveryFailuresDeps, message: BusMessage): Promise<void> {
  const failed = failedDelivery(message);
  if (failed === undefined) return;
  const { letter, delivery } = failed;
  const { event, target } = delivery;
  await deps.ledger.recordOutcome(event.id, conversationKey(target), {
    state: "failed",
    code: letter.reason.code,
    failedAt: letter.failedAt,
  });
  if (!tellsSender(event, event.source)) return;
  const source = (await deps.links.resolve(event.source))?.endpoint;
  if (source === undefined) {
    deps.log.info(
      { eventId: event.id, target: conversationKey(target) },
      "a delivery failed, but its sender's conversation is no longer linked: nobody is told",
    );
    return;
  }
  const line = noticeLine(deps.policy(), target, reasonText(letter), letter.reason.code);
  await tellSender(
    deps.bus,
    event,
    source,
    `Your message could not be delivered to:\n${line}`,
    `${event.id}/undelivered/${conversationKey(target)}`,
  );
}

/**
 * The dead letter and the delivery it holds, when it is one the core published (read from an outbound
 * subject, and still a valid delivery for that subject's network instance); undefined for anything else.
 */
function failedDelivery(message: BusMessage): { letter: DeadLetter; delivery: Delivery } | undefined {
  try {
    const letter = validateDeadLetter(decodeJson(message.data));
    const where = parseOutboundSubject(letter.subject);
    if (where === undefined || letter.payloadEncoding !== "utf8") return undefined;
    const delivery = validateDelivery(JSON.parse(letter.payload));
    const { network, instance } = delivery.target;
    return network === where.network && instance === where.instance ? { letter, delivery } : undefined;
  } catch {
    // Not a delivery (native input a bridge refused, an event the core could not route): nobody to tell.
    return undefined;
  }
}

/** The error's own words, bounded: its first line, cut at MAX_REASON_CHARS. */
function reasonText(letter: DeadLetter): string {
  const firstLine = letter.reason.message.split("\n", 1)[0]?.trim() ?? "";
  const text = firstLine === "" ? "the delivery failed" : firstLine;
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS - 1)}…` : text;
}
