/**
 * Deliveries the target network cannot show (an edit where it has no corrections): the target's adapter posts
 * nothing and audits the delivery as unsupported (fedgate.v1.audit.unsupported). The core reads those records
 * with a durable consumer of its own and keeps them in the ledger, for GET /v1/events/{id}; only for events the
 * ledger keeps, so memberships a network does not show cost nothing. The sender is not told: nothing failed,
 * and the audit trail says what the network cannot show.
 */
import type { Logger } from "pino";
import type { AuditRecord } from "../../../schemas/types.js";
import type { Bus, BusMessage, Subscription } from "../../platform/bus/Bus.js";
import { decodeJson } from "../../platform/bus/KeyValueStore.js";
import { validateAuditBatch } from "../../../schemas/contract/schemas.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { conversationKey } from "../../platform/stores/LinkStore.js";
import { type DeliveryLedger, LEDGER_TYPES } from "./DeliveryLedger.js";

export interface UnsupportedDeliveriesDeps {
  bus: Bus;
  ledger: DeliveryLedger;
  log: Logger;
  /** gateway.ackWaitMs. */
  ackWaitMs: number;
  /** gateway.maxDeliver: attempts at one audit batch (the ledger briefly away). */
  maxAttempts: number;
}

export class UnsupportedDeliveries {
  private constructor(private readonly subscription: Subscription) {}

  static async start(deps: UnsupportedDeliveriesDeps): Promise<UnsupportedDeliveries> {
    const subscription = await deps.bus.consume(
      {
        stream: "FEDGATE_AUDIT",
        durable: "fedgate-core-unsupported-deliveries",
        filterSubject: subjects.audit("unsupported"),
        maxAckPending: 1,
        ackWaitMs: deps.ackWaitMs,
        // The audit stream keeps a year: what was unsupported before this consumer existed stays pending.
        from: "new",
      },
      (message) => record(deps, message),
      { origin: "core", log: deps.log, maxAttempts: deps.maxAttempts },
    );
    return new UnsupportedDeliveries(subscription);
  }

  async stop(): Promise<void> {
    await this.subscription.stop();
  }
}

async function record(deps: UnsupportedDeliveriesDeps, message: BusMessage): Promise<void> {
  for (const r of recordsIn(deps, message))
    if (r.decision === "unsupported" && r.target !== undefined && LEDGER_TYPES.has(r.eventType))
      await deps.ledger.recordOutcome(r.eventId, conversationKey(r.target), {
        state: "unsupported",
        ...(r.detail === undefined ? {} : { detail: r.detail }),
      });
}

function recordsIn(deps: UnsupportedDeliveriesDeps, message: BusMessage): AuditRecord[] {
  try {
    return validateAuditBatch(decodeJson(message.data)).records;
  } catch (error) {
    // An auditor's business, not the ledger's: the batch stays in the audit stream as it is.
    deps.log.warn(
      { err: error, seq: message.seq },
      "an unsupported-delivery audit batch is not valid; skipped",
    );
    return [];
  }
}
