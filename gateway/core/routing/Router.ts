/**
 * The routing core: one inbound event in, zero or more deliveries out.
 *
 *   validate → resolve link → drop echoes → what it relates to → policy per target → ledger → deliveries,
 *   notice, audit → ack
 *
 * It returns (and so lets the bus acknowledge the event) only after every delivery, notice and audit
 * record is stored. All of them carry deterministic message ids, so an event processed twice (after a
 * crash or a redelivery) is still delivered once.
 */
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { SpanKind } from "@opentelemetry/api";
import type { Logger } from "pino";
import type { AuditRecord, Delivery, Endpoint, NormalisedEvent } from "../../../schemas/types.js";
import type { Bus, BusMessage } from "../../platform/bus/Bus.js";
import { validateEvent } from "../../../schemas/contract/schemas.js";
import { parseInboundSubject, subjects, partitionOf } from "../../../schemas/contract/subjects.js";
import { PermanentError, ValidationError } from "../../../schemas/contract/errors.js";
import { type FederationGate, type GateDenial, isFederated } from "../federation/FederationGate.js";
import type { HeldDeliveries } from "./HeldDeliveries.js";
import { RETURN_ORDERED_HEADER } from "../federation/PartnerLink.js";
import type { PolicyEngine, Verdict } from "../policy/PolicyEngine.js";
import { type DeliveryLedger, deniedIn, LEDGER_TYPES } from "./DeliveryLedger.js";
import type { IdentityStore } from "../../platform/stores/IdentityStore.js";
import { encodeJson } from "../../platform/bus/KeyValueStore.js";
import { encodeDelivery } from "./encodeDelivery.js";
import { conversationKey, type LinkMatch, type LinkStore } from "../../platform/stores/LinkStore.js";
import {
  contextOfMessage,
  counter,
  failSpan,
  histogram,
  traceHeaders,
  tracer,
  withSpan,
} from "../../platform/telemetry.js";
import { AuditTrail, contentSha256 } from "./AuditTrail.js";
import { LinkActivity } from "./LinkActivity.js";
import { inboundJson } from "./conversationOf.js";
import { withoutForgotten } from "./forgottenOriginals.js";
import { authorOf, inheritedMarkings, originalsOf, relationDenial, WITHHOLDING } from "./relations.js";
import { noticeLine, tellSender, tellsSender } from "./senderNotice.js";

const decisions = counter("fedgate.decisions", {
  description: "Routing decisions by outcome and reason",
});
const deliveries = counter("fedgate.deliveries", {
  description: "Deliveries the core published, by target network and instance",
});
const routeLatency = histogram("fedgate.route.latency", {
  description: "From the event's timestamp (the bridge's native receive) to its deliveries and audit stored",
  unit: "ms",
});

export interface RouterDeps {
  bus: Bus;
  links: LinkStore;
  identities: IdentityStore;
  /** What was decided for each routed message, for judging what relates to it later. */
  ledger: DeliveryLedger;
  policy: () => PolicyEngine;
  log: Logger;
  /** Named in audit records as decidedBy; defaults to <host>/<pid>. */
  replicaId?: string;
  /** Consent and manifests of partner gateways; without it, nothing crosses to or from one. */
  federation?: FederationGate;
  /** gateway.auditKey: the key each audit batch's HMAC is made with. */
  auditKey?: Uint8Array;
  /** Where deliveries wait for the hub's order, in conversations a partner gateway orders (link.orderedBy). */
  held?: HeldDeliveries;
}

const NO_FEDERATION: GateDenial = {
  decision: "deny",
  reason: "not-consented",
  detail: "This gateway has no federation configured: it shares no conversation with a partner gateway.",
};

const LINK_PAUSED: Extract<Verdict, { decision: "deny" }> = {
  decision: "deny",
  reason: "link-paused",
  detail: "The link is paused by an admin; nothing crosses it until it is resumed.",
};

export class Router {
  private readonly audit: AuditTrail;
  private readonly replicaId: string;
  /** Per target conversation, the suffix that makes a delivery id unique; bounded by the links. */
  private readonly deliverySuffixes = new Map<string, string>();
  private readonly activity: LinkActivity;

  constructor(private readonly deps: RouterDeps) {
    this.replicaId = deps.replicaId ?? `${hostname()}/${process.pid}`;
    this.audit = new AuditTrail(deps.bus, this.replicaId, deps.auditKey);
    this.activity = new LinkActivity(deps.links);
  }

  /** Parses and checks an inbound message. Throws FG_EVENT_MALFORMED or FG_EVENT_INVALID. */
  static parse(message: BusMessage): NormalisedEvent {
    let value: unknown;
    try {
      value = inboundJson(message);
    } catch (cause) {
      throw new PermanentError("FG_EVENT_MALFORMED", `inbound message on ${message.subject} is not JSON`, {
        cause,
      });
    }
    const event = validateEvent(value);
    const where = parseInboundSubject(message.subject);
    const { network, instance, conversation } = event.source;
    if (
      where?.network !== network ||
      where.instance !== instance ||
      where.partition !== partitionOf(network, instance, conversation)
    ) {
      throw new ValidationError("FG_EVENT_INVALID", "event", [
        {
          pointer: "/source",
          message: `was published on ${message.subject}, but its source belongs on ${subjects.inbound(event.source)}`,
        },
      ]);
    }
    return event;
  }

  async handle(message: BusMessage): Promise<void> {
    const event = Router.parse(message);
    // Active only when recorded (see withSpan): then what the routing logs carries the trace's ids.
    const span = tracer.startSpan(
      "fedgate.route",
      {
        kind: SpanKind.CONSUMER,
        attributes: { "fedgate.event.id": event.id, "fedgate.event.type": event.type },
      },
      contextOfMessage(message.headers, event.trace),
    );
    try {
      const returnOrdered = message.headers[RETURN_ORDERED_HEADER] === "1";
      await withSpan(span, () => this.route(event, message.data, traceHeaders(span), returnOrdered));
      routeLatency.record(Date.now() - Date.parse(event.timestamp), { network: event.source.network });
    } catch (error) {
      throw failSpan(span, error);
    } finally {
      span.end();
    }
  }

  /**
   * Routes `event`; `eventJson` is the event as it was published, which its deliveries carry unchanged, and
   * `spanHeaders` the trace context they continue (the route's span). `returnOrdered`: the partner the event
   * came from follows this gateway's order, and is sent the event back in it.
   */
  private async route(
    event: NormalisedEvent,
    eventJson: Uint8Array,
    spanHeaders: Record<string, string> | undefined,
    returnOrdered: boolean,
  ): Promise<void> {
    const { links, identities, log } = this.deps;
    const match = await links.resolve(event.source);
    if (match === undefined) {
      log.debug(
        { eventId: event.id, source: conversationKey(event.source) },
        "event from a conversation with no link",
      );
      await this.record(event, undefined, undefined, {
        decision: "deny",
        reason: "no-link",
        detail: "conversation is not linked",
      });
      return;
    }
    this.activity.note(match.link.id, "inbound");
    if (match.link.orderedBy === match.endpoint.instance && isFederated(match.endpoint)) {
      if (await this.returnedByHub(event)) return;
    }
    const sourceAgency = event.sender.agency ?? match.endpoint.agency;
    if (identities.isPuppet({ ...event.source, userId: event.sender.userId })) {
      await this.record(
        event,
        match.link.id,
        undefined,
        { decision: "deny", reason: "echo", detail: "sent by a fedgate puppet" },
        sourceAgency,
      );
      return;
    }

    if (isFederated(match.endpoint)) {
      const refusal = this.federation((gate) => gate.incoming(event, match.endpoint));
      if (refusal !== undefined) {
        log.warn(
          { eventId: event.id, partner: match.endpoint.instance, reason: refusal.reason },
          "event from a partner gateway refused",
        );
        await this.record(event, match.link.id, undefined, refusal, sourceAgency);
        return;
      }
    }

    const policy = this.deps.policy();
    // What it relates to and the ledger no longer holds leaves the event a plain message, or nothing.
    const relating = withoutForgotten(event, await originalsOf(event, this.deps.ledger));
    const { event: routed, originals, detail } = "dropped" in relating ? { event, originals: {} } : relating;
    const dropped = "dropped" in relating ? relating.dropped : undefined;
    const relatedMarkings = inheritedMarkings(originals);
    const linkMarking = match.link.marking === undefined ? {} : { linkMarking: match.link.marking };
    const decided = match.others.map((target) => ({
      target,
      verdict:
        (match.link.state === "paused" ? LINK_PAUSED : undefined) ??
        dropped ??
        relationDenial(routed, target, originals) ??
        (isFederated(target) ? this.federation((gate) => gate.outgoing(target)) : undefined) ??
        policy.decide({ event: routed, source: match.endpoint, target, relatedMarkings, ...linkMarking }),
    }));
    // Stored before any delivery goes out: an answer to this message can only come after someone received it.
    if (LEDGER_TYPES.has(routed.type)) {
      const marking = policy.markingOf({ event: routed, relatedMarkings, ...linkMarking });
      await this.deps.ledger.record(event.id, {
        author: authorOf(event),
        source: conversationKey(event.source),
        ...(marking === undefined ? {} : { marking }),
        reached: [
          conversationKey(event.source),
          ...decided.filter((d) => d.verdict.decision === "deliver").map((d) => conversationKey(d.target)),
        ],
        withheld: decided
          .filter((d) => d.verdict.decision === "deny" && WITHHOLDING.has(d.verdict.reason))
          .map((d) => conversationKey(d.target)),
        at: Date.now(),
        ...(event.type === "message.created" ? {} : { type: event.type }),
        ...deniedIn(decided),
      });
    }

    const work: Promise<unknown>[] = [];
    const denied: { target: Endpoint; verdict: Extract<Verdict, { decision: "deny" }> }[] = [];
    /** The routed event's bytes, encoded once for every target: as published, unless routing changed it. */
    const routedJson = routed === event ? eventJson : encodeJson(routed);
    const outgoing: { delivery: Omit<Delivery, "event">; json: Uint8Array }[] = [];
    // Following a hub: what this gateway's own networks wrote waits for the hub to return it in its order.
    const hub = this.hubOf(match, event, decided);
    const held: Omit<Delivery, "event">[] = [];
    for (const { target, verdict } of decided) {
      if (verdict.decision === "deliver") {
        const delivery: Omit<Delivery, "event"> = {
          specVersion: "1",
          id: `${event.id}.${this.deliverySuffix(target)}`,
          target,
          senderAgency: verdict.senderAgency,
          ...(verdict.marking === undefined ? {} : { marking: verdict.marking }),
        };
        if (hub === undefined || target === hub) outgoing.push({ delivery, json: routedJson });
        else held.push(delivery);
      } else {
        denied.push({ target, verdict });
        log.info(
          { eventId: event.id, target: conversationKey(target), reason: verdict.reason },
          "event denied by policy",
        );
      }
      const audited =
        verdict.decision === "deliver" && detail !== undefined ? { ...verdict, detail } : verdict;
      work.push(this.record(event, match.link.id, target, audited, sourceAgency));
    }
    // A follower's own event, returned in this gateway's order: what it holds for its other networks goes now.
    if (returnOrdered && isFederated(match.endpoint))
      outgoing.push({
        delivery: {
          specVersion: "1",
          id: `${event.id}.${this.deliverySuffix(match.endpoint)}`,
          target: match.endpoint,
        },
        json: eventJson,
      });
    if (held.length > 0) {
      // Stored before the hub hears of the event, so that its return always finds them.
      await this.deps.held?.hold(event.id, routedJson, held);
      for (const { delivery } of outgoing) if (delivery.target === hub) delivery.returnOrdered = true;
    }
    for (const { delivery, json } of outgoing)
      work.push(
        this.deps.bus.publish(
          subjects.outbound(delivery.target.network, delivery.target.instance),
          encodeDelivery(delivery, json),
          spanHeaders === undefined ? { msgId: delivery.id } : { msgId: delivery.id, headers: spanHeaders },
        ),
      );
    // Nobody is told that what they answered is too old: they did nothing wrong.
    const told = denied.filter((d) => d.verdict.reason !== "relation-forgotten");
    if (told.length > 0 && tellsSender(event, match.endpoint))
      work.push(this.notify(event, match.endpoint, told, spanHeaders));
    await Promise.all(work);
    // Counted once stored: an event handled again after a failure would otherwise count its deliveries twice.
    for (const { target, verdict } of decided)
      if (verdict.decision === "deliver") {
        deliveries.add(1, { network: target.network, instance: target.instance });
        this.activity.note(match.link.id, "outbound");
      }
  }

  /**
   * The hub's endpoint, when this gateway follows a hub's order in the event's link and releases the event to
   * it: an event written on one of this gateway's own networks, with the hub among its deliveries.
   */
  private hubOf(
    match: LinkMatch,
    event: NormalisedEvent,
    decided: { target: Endpoint; verdict: Verdict }[],
  ): Endpoint | undefined {
    const { orderedBy } = match.link;
    if (orderedBy === undefined || this.deps.held === undefined || isFederated(event.source))
      return undefined;
    return decided.find(
      (d) => d.verdict.decision === "deliver" && isFederated(d.target) && d.target.instance === orderedBy,
    )?.target;
  }

  /**
   * Whether an event from the hub of a conversation this gateway follows is one of this gateway's own,
   * returned in the hub's order: its held deliveries go out now, or went already (a repeat, or the wait
   * ran out). Nothing of the hub's copy is delivered: it says when, never what.
   */
  private async returnedByHub(event: NormalisedEvent): Promise<boolean> {
    if ((await this.deps.held?.release(event.id)) === true) return true;
    const routed = await this.deps.ledger.get(event.id);
    return routed !== undefined && routed.source !== conversationKey(event.source);
  }

  /** What the federation gate says, or a refusal when this gateway has none. */
  private federation(ask: (gate: FederationGate) => GateDenial | undefined): GateDenial | undefined {
    return this.deps.federation === undefined ? NO_FEDERATION : ask(this.deps.federation);
  }

  private deliverySuffix(target: Endpoint): string {
    const key = conversationKey(target);
    let suffix = this.deliverySuffixes.get(key);
    if (suffix === undefined) {
      suffix = createHash("sha256").update(key).digest("hex").slice(0, 16);
      this.deliverySuffixes.set(key, suffix);
    }
    return suffix;
  }

  /** Tells the sender, in their own conversation, which targets refused the event and why. */
  private async notify(
    event: NormalisedEvent,
    source: Endpoint,
    denied: { target: Endpoint; verdict: Extract<Verdict, { decision: "deny" }> }[],
    spanHeaders: Record<string, string> | undefined,
  ): Promise<void> {
    const policy = this.deps.policy();
    const lines = denied.map(({ target, verdict }) =>
      noticeLine(policy, target, verdict.detail, verdict.reason),
    );
    const text = `Your message was not delivered to:\n${lines.join("\n")}`;
    await tellSender(this.deps.bus, event, source, text, `${event.id}/notice`, spanHeaders);
  }

  private async record(
    event: NormalisedEvent,
    linkId: string | undefined,
    target: Endpoint | undefined,
    verdict: Pick<Verdict, "decision" | "reason"> & { detail?: string; effectiveMarking?: string },
    sourceAgency?: string,
  ): Promise<void> {
    decisions.add(1, { decision: verdict.decision, reason: verdict.reason });
    const hash = contentSha256(event);
    const record: AuditRecord = {
      specVersion: "1",
      eventId: event.id,
      eventType: event.type,
      decision: verdict.decision,
      reason: verdict.reason,
      source: { ...event.source, ...(sourceAgency === undefined ? {} : { agency: sourceAgency }) },
      decidedAt: new Date().toISOString(),
      decidedBy: this.replicaId,
      ...(verdict.detail === undefined ? {} : { detail: verdict.detail }),
      ...(target === undefined ? {} : { target }),
      ...(linkId === undefined ? {} : { linkId }),
      ...(verdict.effectiveMarking === undefined ? {} : { marking: verdict.effectiveMarking }),
      ...(hash === undefined ? {} : { contentSha256: hash }),
    };
    await this.audit.record(record);
  }
}
