/**
 * This gateway's side of the conversations it shares with one partner gateway, over the federation subjects
 * the leafnode carries (see federationAccounts.ts):
 *
 * - out: the deliveries the core released to the partner (fedgate.v1.outbound.federation.<partner>) are sent
 *   one at a time, in order, each until the partner answers with a receipt. While the partner (or the
 *   leafnode) is down they wait in this gateway's outbound stream: nothing is lost, and they flow in order
 *   when it returns.
 * - in: the partner's events are stored in this gateway's inbound stream as events of network
 *   "federation", instance <partner>, and receipted; the router then decides them like any other (consent,
 *   the partner's manifest, this gateway's own policy) and audits each decision. Each is stored once by the
 *   partner's delivery id, so a repeat is stored once; event ids are kept, so replies, edits and reactions
 *   find their message on both sides.
 * - consent: this gateway's grants are sent on every change and again every few seconds (a partner that
 *   was away catches up); the partner's are verified against its manifest and kept.
 */
import type { Logger } from "pino";
import type { Delivery, NormalisedEvent, FederatedEvent, FederationReceipt } from "../../../schemas/types.js";
import type { Bus, Subscription } from "../../platform/bus/Bus.js";
import {
  validateDelivery,
  validateEvent,
  validateFederatedEvent,
  validateFederationReceipt,
} from "../../../schemas/contract/schemas.js";
import { FEDERATION_NETWORK, subjects } from "../../../schemas/contract/subjects.js";
import {
  errorCode,
  FedgateError,
  PermanentError,
  TransientError,
  ValidationError,
} from "../../../schemas/contract/errors.js";
import type { ConsentStore } from "./ConsentStore.js";
import { decodeJson, encodeJson } from "../../platform/bus/KeyValueStore.js";

export interface PartnerLinkOptions {
  bus: Bus;
  /** This gateway's id. */
  self: string;
  partner: string;
  consents: ConsentStore;
  log: Logger;
  ackWaitMs: number;
  /** How long a sent event waits for its receipt before it is sent again. */
  receiptTimeoutMs?: number;
  /** How often this gateway's grants are sent again. */
  announceEveryMs?: number;
}

const RECEIPT_TIMEOUT_MS = 3000;
/**
 * How often every grant is sent again, for a partner that was away: a change is sent at once, and the
 * revoking side stops at once whether the partner hears it or not, so this bounds only how stale a returning
 * partner's view can be. Repeats cost the partner a comparison each (see ConsentStore.receive).
 */
const ANNOUNCE_EVERY_MS = 30_000;

/** A partner away is normal: its deliveries wait, retried at most a second apart, and are never given up. */
const partnerBackoff = (attempt: number): number => Math.min(100 * 2 ** (attempt - 1), 1000);

/**
 * On an inbound event a partner sent with returnOrdered: this gateway orders the conversation, and the router
 * returns the event to that partner in its order (see routing/HeldDeliveries.ts for the partner's side).
 */
export const RETURN_ORDERED_HEADER = "Fedgate-Return-Ordered";

/** What this gateway releases of a delivery: the event as the partner is to see it, its agency asserted. */
export function releasedEvent(delivery: Delivery, self: string): FederatedEvent {
  const { event, target } = delivery;
  const marking = delivery.marking?.original ?? delivery.marking?.id;
  const { messageId: _native, ...source } = event.source;
  const released: NormalisedEvent = {
    ...event,
    // The partner sees the shared conversation, not this gateway's native one.
    source: { ...source, network: FEDERATION_NETWORK, instance: self, conversation: target.conversation },
    sender: {
      ...event.sender,
      ...(delivery.senderAgency === undefined ? {} : { agency: delivery.senderAgency.id }),
    },
  };
  if (marking === undefined) delete released.marking;
  else released.marking = marking;
  return {
    specVersion: "1",
    id: delivery.id,
    conversation: target.conversation,
    event: released,
    ...(delivery.returnOrdered === true ? { returnOrdered: true } : {}),
  };
}

export class PartnerLink {
  private readonly subscriptions: Subscription[] = [];
  private readonly awaiting = new Map<string, (receipt: FederationReceipt) => void>();
  private announcer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: PartnerLinkOptions) {}

  static async start(options: PartnerLinkOptions): Promise<PartnerLink> {
    const link = new PartnerLink(options);
    await link.begin();
    return link;
  }

  private subject(from: string, to: string, kind: "event" | "receipt" | "grant"): string {
    return subjects.federationMessage(from, to, kind);
  }

  private async begin(): Promise<void> {
    const { bus, self, partner, consents, log } = this.options;
    this.subscriptions.push(
      bus.listen(this.subject(partner, self, "receipt"), (m) => {
        const receipt = validateFederationReceipt(decodeJson(m.data));
        this.awaiting.get(receipt.id)?.(receipt);
        return Promise.resolve();
      }),
      // Every core replica hears the partner's events (stored once, by id) and receipts (the replica that
      // sent an event waits for its own). A queue group would share the work, but in our tests (nats-server
      // 2.9.10) a queue subscription to the partner's imported subjects heard nothing after its own server
      // restarted.
      bus.listen(this.subject(partner, self, "event"), (m) => this.receive(m.data)),
      bus.listen(this.subject(partner, self, "grant"), async (m) => {
        try {
          const grant = await consents.receive(partner, decodeJson(m.data));
          log.debug(
            { partner, conversation: grant.conversation, state: grant.state },
            "partner's grant held",
          );
        } catch (error) {
          log.warn({ partner, code: errorCode(error), err: error }, "partner's grant refused");
        }
      }),
    );
    consents.onChange((signed, side) => {
      if (side === "ours" && signed.grant.partner === partner) void this.announce([signed]);
    });
    this.announcer = setInterval(
      () => void this.announce(consents.ours(partner)),
      this.options.announceEveryMs ?? ANNOUNCE_EVERY_MS,
    );
    void this.announce(consents.ours(partner));
    this.subscriptions.push(
      await bus.consume(
        {
          stream: "FEDGATE_OUTBOUND",
          durable: `fedgate-federation-${partner}`,
          filterSubject: subjects.outbound(FEDERATION_NETWORK, partner),
          // One at a time: the partner receives a conversation's events in the order they were decided.
          maxAckPending: 1,
          ackWaitMs: this.options.ackWaitMs,
        },
        async (message) => {
          await this.release(validateDelivery(decodeJson(message.data)));
        },
        {
          origin: `federation-${partner}`,
          log,
          maxAttempts: Number.POSITIVE_INFINITY,
          backoffMs: partnerBackoff,
        },
      ),
    );
  }

  private async announce(grants: readonly unknown[]): Promise<void> {
    const { bus, self, partner, log } = this.options;
    for (const grant of grants) {
      try {
        await bus.send(this.subject(self, partner, "grant"), encodeJson(grant));
      } catch (error) {
        log.debug({ partner, err: error }, "grant not sent; sent again shortly");
      }
    }
  }

  /** Sends one released event and waits for the partner's receipt. */
  private async release(delivery: Delivery): Promise<void> {
    const { bus, self, partner } = this.options;
    const federated = releasedEvent(delivery, self);
    const timeoutMs = this.options.receiptTimeoutMs ?? RECEIPT_TIMEOUT_MS;
    let settle: (receipt: FederationReceipt | undefined) => void = () => undefined;
    const answered = new Promise<FederationReceipt | undefined>((resolve) => {
      settle = resolve;
    });
    const timer = setTimeout(() => settle(undefined), timeoutMs);
    this.awaiting.set(federated.id, settle);
    try {
      await bus.send(this.subject(self, partner, "event"), encodeJson(federated));
      const receipt = await answered;
      if (receipt === undefined)
        throw new TransientError(
          "FG_PEER_UNAVAILABLE",
          `partner gateway ${partner} did not receipt ${federated.id} within ${String(timeoutMs)} ms; sending it again`,
        );
      if (receipt.outcome === "refused")
        throw new PermanentError(
          "FG_PARTNER_REFUSED",
          `partner gateway ${partner} refused ${federated.id}: ${receipt.code ?? "no code"} ${receipt.detail ?? ""}`.trim(),
        );
    } finally {
      clearTimeout(timer);
      this.awaiting.delete(federated.id);
    }
  }

  /** Stores one event the partner sent as an inbound event of this gateway, then receipts it. */
  private async receive(data: Uint8Array): Promise<void> {
    const { bus, self, partner, log } = this.options;
    let id: string | undefined;
    let receipt: FederationReceipt;
    try {
      const value = decodeJson(data);
      if (typeof value === "object" && value !== null && typeof (value as { id?: unknown }).id === "string")
        id = (value as { id: string }).id.slice(0, 200);
      const federated = validateFederatedEvent(value);
      if (federated.event.type === "notice")
        throw new ValidationError("FG_EVENT_INVALID", "federated event", [
          { pointer: "/event/type", message: "notices are a gateway's own: a partner does not send them" },
        ]);
      // Where it comes from is what the subject says, never what the partner wrote.
      const { messageId: _native, ...source } = federated.event.source;
      const event = validateEvent({
        ...federated.event,
        source: {
          ...source,
          network: FEDERATION_NETWORK,
          instance: partner,
          conversation: federated.conversation,
        },
      });
      // Stored once per delivery of the partner's: an event of this gateway's own that the hub returns has the
      // event's id, and must not be taken for the original.
      await bus.publish(subjects.inbound(event.source), encodeJson(event), {
        msgId: federated.id,
        ...(federated.returnOrdered === true ? { headers: { [RETURN_ORDERED_HEADER]: "1" } } : {}),
      });
      receipt = { id: federated.id, outcome: "stored" };
    } catch (error) {
      // Stored nowhere: the partner hears nothing and sends it again.
      if (error instanceof FedgateError && error.transient) throw error;
      log.warn(
        { partner, code: errorCode(error), err: error },
        "partner's event refused: it is not a valid event",
      );
      if (id === undefined) return;
      receipt = {
        id,
        outcome: "refused",
        code: errorCode(error),
        detail: (error instanceof Error ? error.message : String(error)).slice(0, 512),
      };
    }
    await bus.send(this.subject(self, partner, "receipt"), encodeJson(receipt));
  }

  async stop(): Promise<void> {
    clearInterval(this.announcer);
    await Promise.all(this.subscriptions.map((s) => s.stop()));
  }
}
