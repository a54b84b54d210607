/**
 * What every adapter shares, whatever its protocol: publishing normalised events to the bus, consuming the
 * deliveries addressed to its network instance, and keeping the message map and identities.
 *
 * Relations arrive as gateway event ids and are turned into native ids here, at delivery time: deliveries
 * of one instance are consumed in order, so the message a reply points at was delivered (and recorded)
 * before the reply is handled.
 */
import { createHash, randomUUID } from "node:crypto";
import { SpanKind, type Span } from "@opentelemetry/api";
import type { Logger } from "pino";
import type { AuditBatch, Delivery, NormalisedEvent } from "../../schemas/types.js";
import type { Bus, Subscription } from "../../gateway/platform/bus/Bus.js";
import { countDeadLetter, deadLetterOf } from "../../gateway/platform/bus/consumePolicy.js";
import { adapterConsumer, buckets } from "../../schemas/contract/topology.js";
import { validateDelivery, validateEvent } from "../../schemas/contract/schemas.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import {
  contextOf,
  contextOfMessage,
  failSpan,
  histogram,
  traceContextOf,
  traceHeaders,
  tracer,
  withSpan,
} from "../../gateway/platform/telemetry.js";
import { IdentityStore } from "../../gateway/platform/stores/IdentityStore.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import { MessageMap } from "../../gateway/platform/stores/MessageMap.js";
import { type Capabilities, unsupportedReason } from "./capabilities.js";
import { cleanDelivery, cleanEvent } from "./cleanText.js";
import { LinkedConversations } from "./LinkedConversations.js";

/** A delivery's relations as native ids in the target conversation; absent where the target never saw it. */
export interface NativeRelations {
  replyTo?: string;
  replaces?: string;
  redacts?: string;
  reactsTo?: string;
}

/** The native id of a message, and any other ids the network gives the same message. */
export interface NativeMessage {
  id: string;
  aliases?: string[];
  /**
   * The id only packs the aliases (and what else the adapter keeps of the message): no native reference names
   * it, so the message map gives it no key of its own.
   */
  packed?: boolean;
}

/** A delivery the network cannot show (membership where it has none): audited as such, never as delivered. */
export interface Unsupported {
  unsupported: string;
}

/** The outcome for an event the network cannot show; `detail` says what, without message content. */
export function unsupported(detail: string): Unsupported {
  return { unsupported: detail };
}

/**
 * Delivers one event into the adapter's network. Returns the native id(s) of what it created there (so later
 * edits, replies and reactions can find it), undefined when nothing addressable was created, or
 * unsupported(…) when the network cannot show the event at all.
 * Throw a TransientError to be retried, a PermanentError to dead-letter the delivery.
 */
export type DeliveryHandler = (
  delivery: Delivery,
  relations: NativeRelations,
) => Promise<string | NativeMessage | Unsupported | undefined>;

/**
 * Latency buckets in milliseconds: bridging takes milliseconds; a message caught up after an outage or held
 * back by a retry takes seconds to minutes.
 */
const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000];

const publishLatency = histogram("fedgate.bridge.publish.latency", {
  description: "From an event's timestamp (native receive) to the event stored on the bus, by source network",
  unit: "ms",
  advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
});
const deliveryLatency = histogram("fedgate.delivery.latency", {
  description:
    "End to end: from an event's timestamp (native receive) to its native send by the delivering bridge, by target and source network",
  unit: "ms",
  advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
});
const sendDuration = histogram("fedgate.delivery.send.duration", {
  description: "From a delivery handed to the bridge to its native send done, by target network",
  unit: "ms",
  advice: { explicitBucketBoundaries: LATENCY_BUCKETS_MS },
});

/** A bridge's deliveries' ack wait when its config names none (gateway.ackWaitMs's schema default). */
const DEFAULT_ACK_WAIT_MS = 30_000;
/** Longest a delivery keeps itself in work: past it, it counts as hung and is handed out again. */
const MAX_DELIVERY_MS = 10 * 60 * 1000;

/** How a bridge's deliveries are consumed, from the config file (gateway.ackWaitMs). */
export type DeliverySettings = Pick<AdapterRuntimeOptions, "ackWaitMs">;

export interface AdapterRuntimeOptions {
  network: string;
  instance: string;
  log: Logger;
  /** What the network can show; deliveries it cannot are audited as unsupported without reaching the adapter. */
  capabilities?: Capabilities;
  /** Attempts for a delivery failing transiently before it is dead-lettered. */
  maxAttempts?: number;
  /**
   * How long a delivery may go without a sign of progress before JetStream hands it out again: a bridge that
   * died is replaced after about this long. A delivery in work shows progress on its own, up to
   * MAX_DELIVERY_MS, however long it takes.
   */
  ackWaitMs?: number;
}

export class AdapterRuntime {
  private readonly subscriptions: Subscription[] = [];
  /** This instance's linked conversations, and their changes. */
  readonly linked: LinkedConversations;
  private isClosed = false;

  private constructor(
    private readonly bus: Bus,
    readonly messages: MessageMap,
    readonly identities: IdentityStore,
    /** The links, kept current by a watch: which of this instance's conversations are linked, and with whom. */
    readonly links: LinkStore,
    private readonly options: AdapterRuntimeOptions,
  ) {
    this.linked = new LinkedConversations(links, options.network, options.instance);
  }

  static async open(bus: Bus, options: AdapterRuntimeOptions): Promise<AdapterRuntime> {
    await bus.ensureTopology();
    // Every bucket first, then the watches: a failure leaves no watch running.
    const identities = new IdentityStore(await bus.keyValue(buckets.identities));
    const links = new LinkStore(await bus.keyValue(buckets.links));
    const messages = new MessageMap(await bus.keyValue(buckets.messages));
    await identities.start();
    try {
      await links.start();
    } catch (error) {
      identities.stop();
      throw error;
    }
    return new AdapterRuntime(bus, messages, identities, links, options);
  }

  /** A new gateway-wide event id. */
  newEventId(): string {
    return randomUUID();
  }

  /**
   * The event id of something that happened to native input, derived from what identifies it in this
   * network instance: the same input seen twice (a retried transaction, a catch-up) gets the same id, and
   * the bus stores it once.
   */
  eventIdOf(...identity: string[]): string {
    const { network, instance } = this.options;
    // 32 hex digits: 128 bits, and always a valid event id.
    return createHash("sha256")
      .update([network, instance, ...identity].join("\0"))
      .digest("hex")
      .slice(0, 32);
  }

  /**
   * Cleans (see cleanText), validates and publishes an event from this adapter's network, then records its
   * native message id: once recorded, the message counts as bridged (bridges skip what the message map
   * knows), so it must be on the bus first. It is recorded before this resolves, so the conversation's next
   * message (an edit of it) finds it. `ids` are the message's other native ids (see NativeMessage). Publishing
   * the same event id twice stores it once; a failure in between is retried by publishing again.
   */
  async publish(native: NormalisedEvent, ids: Omit<NativeMessage, "id"> = {}): Promise<void> {
    // Where a message's trace starts (or goes on, from a trace the event carries): the core continues it from
    // the message's headers, or from the event's trace field where headers are lost.
    const span = tracer.startSpan(
      "fedgate.receive",
      {
        kind: SpanKind.PRODUCER,
        attributes: { "fedgate.event.id": native.id, "fedgate.event.type": native.type },
      },
      contextOf(native.trace),
    );
    try {
      await withSpan(span, () => this.publishTraced(native, ids, span));
    } catch (error) {
      throw failSpan(span, error);
    } finally {
      span.end();
    }
  }

  private async publishTraced(
    native: NormalisedEvent,
    ids: Omit<NativeMessage, "id">,
    span: Span,
  ): Promise<void> {
    const headers = traceHeaders(span);
    const trace = traceContextOf(span);
    const event = cleanEvent(trace === undefined ? native : { ...native, trace });
    validateEvent(event);
    const { network, instance } = this.options;
    if (event.source.network !== network || event.source.instance !== instance) {
      throw new PermanentError(
        "FG_EVENT_INVALID",
        `adapter ${network}/${instance} cannot publish an event from ${event.source.network}/${event.source.instance}`,
      );
    }
    const receipt = await this.bus.publish(
      subjects.inbound(event.source),
      encodeJson(event),
      headers === undefined ? { msgId: event.id } : { msgId: event.id, headers },
    );
    // Once per event: one published again (a retry, a catch-up) was measured when first stored.
    if (!receipt.duplicate) publishLatency.record(Date.now() - Date.parse(event.timestamp), { network });
    if (event.source.messageId !== undefined && event.type === "message.created") {
      this.warnTaken(
        event.id,
        await this.messages.record(event.id, event.source, event.source.messageId, ids.aliases, ids.packed),
      );
    }
  }

  /**
   * Tells operators about native input the adapter refused (it could not be read, decrypted or bridged):
   * a dead letter with the reason, read from `where` (the native conversation), with the native message as
   * it arrived (never decrypted text) as its payload. With `dedupeId`, the same refusal is stored once.
   */
  async deadLetter(where: string, nativeMessage: unknown, error: unknown, dedupeId?: string): Promise<void> {
    const { network, instance } = this.options;
    const origin = `${network}-${instance}`;
    const data = new TextEncoder().encode(
      typeof nativeMessage === "string" ? nativeMessage : JSON.stringify(nativeMessage),
    );
    const letter = deadLetterOf(origin, `${network}/${instance}/${where}`, data, error);
    const receipt = await this.bus.publish(
      subjects.deadLetter(origin),
      encodeJson(letter),
      dedupeId === undefined ? undefined : { msgId: `${origin}.${dedupeId}` },
    );
    if (!receipt.duplicate) countDeadLetter(letter);
  }

  /** Consumes deliveries for this instance, in order, and records the native id of each one delivered. */
  async consumeDeliveries(handler: DeliveryHandler): Promise<Subscription> {
    const { network, instance, log } = this.options;
    const ackWaitMs = this.options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
    const subscription = await this.bus.consume(
      {
        stream: "FEDGATE_OUTBOUND",
        durable: adapterConsumer(network, instance),
        filterSubject: subjects.outbound(network, instance),
        maxAckPending: 1,
        ackWaitMs,
      },
      async (message, progress) => {
        let value: unknown;
        try {
          value = JSON.parse(Buffer.from(message.data).toString("utf8"));
        } catch (cause) {
          throw new PermanentError("FG_EVENT_MALFORMED", `delivery on ${message.subject} is not JSON`, {
            cause,
          });
        }
        const delivery = cleanDelivery(validateDelivery(value));
        // A delivery in work (a large file to fetch and upload) must not be handed out again meanwhile; one
        // that hangs past MAX_DELIVERY_MS is, as is one whose bridge died.
        const started = Date.now();
        const beat = setInterval(() => {
          if (Date.now() - started < MAX_DELIVERY_MS) progress();
        }, ackWaitMs / 3);
        const cannot =
          this.options.capabilities === undefined
            ? undefined
            : unsupportedReason(network, this.options.capabilities, delivery.event.type);
        let native: Awaited<ReturnType<DeliveryHandler>>;
        // The native send ends the trace: a child of the core's route span (the message's headers), or of the
        // publishing bridge's span where only the event's trace field came through.
        const span = tracer.startSpan(
          "fedgate.deliver",
          {
            kind: SpanKind.CONSUMER,
            attributes: {
              "fedgate.event.id": delivery.event.id,
              "fedgate.event.type": delivery.event.type,
              "fedgate.delivery.id": delivery.id,
            },
          },
          contextOfMessage(message.headers, delivery.event.trace),
        );
        try {
          native = await withSpan(span, async () =>
            cannot === undefined
              ? await handler(delivery, await this.nativeRelations(delivery))
              : unsupported(cannot),
          );
        } catch (error) {
          throw failSpan(span, error);
        } finally {
          clearInterval(beat);
          span.end();
        }
        if (native !== undefined && typeof native !== "string" && "unsupported" in native) {
          await this.auditUnsupported(delivery, native.unsupported);
          return;
        }
        const sentAt = Date.now();
        sendDuration.record(sentAt - started, { network });
        deliveryLatency.record(sentAt - Date.parse(delivery.event.timestamp), {
          network,
          source_network: delivery.event.source.network,
        });
        const { id, aliases, packed } = typeof native === "string" ? { id: native } : (native ?? {});
        if (id !== undefined)
          this.warnTaken(
            delivery.event.id,
            await this.messages.record(delivery.event.id, delivery.target, id, aliases, packed),
          );
      },
      { origin: `${network}-${instance}`, log, maxAttempts: this.options.maxAttempts ?? 10 },
    );
    this.subscriptions.push(subscription);
    return subscription;
  }

  /**
   * The audit record of a delivery the network cannot show. Stored once per delivery (its id is the
   * JetStream message id), however often the delivery is handed out again.
   */
  private async auditUnsupported(delivery: Delivery, detail: string): Promise<void> {
    const { network, instance } = this.options;
    const { event, target } = delivery;
    const batch: AuditBatch = {
      specVersion: "1",
      records: [
        {
          specVersion: "1",
          eventId: event.id,
          eventType: event.type,
          decision: "unsupported",
          reason: "unsupported-by-network",
          detail,
          source: {
            network: event.source.network,
            instance: event.source.instance,
            conversation: event.source.conversation,
            ...(event.sender.agency === undefined ? {} : { agency: event.sender.agency }),
          },
          target,
          ...(delivery.marking === undefined ? {} : { marking: delivery.marking.id }),
          decidedAt: new Date().toISOString(),
          decidedBy: `${network}-${instance}`,
        },
      ],
    };
    await this.bus.publish(subjects.audit("unsupported"), encodeJson(batch), {
      msgId: `unsupported.${delivery.id}`,
    });
  }

  /** Native ids another message had already: they keep naming it (see MessageMap.record). */
  private warnTaken(eventId: string, taken: string[]): void {
    if (taken.length > 0)
      this.options.log.warn(
        { eventId, ids: taken.length },
        "a message reuses ids of another; they keep naming the first",
      );
  }

  private async nativeRelations(delivery: Delivery): Promise<NativeRelations> {
    const resolved: NativeRelations = {};
    const relations = delivery.event.relations ?? {};
    for (const key of ["replyTo", "replaces", "redacts", "reactsTo"] as const) {
      const eventId = relations[key];
      if (eventId === undefined) continue;
      const nativeId = await this.messages.nativeId(eventId, delivery.target);
      if (nativeId !== undefined) resolved[key] = nativeId;
    }
    return resolved;
  }

  /** Whether close() was called: nothing of the runtime runs after it. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Stops taking deliveries (one in hand is finished first); the rest of the runtime keeps running. */
  async stopDeliveries(): Promise<void> {
    await Promise.all(this.subscriptions.splice(0).map((s) => s.stop()));
  }

  async close(): Promise<void> {
    this.isClosed = true;
    await this.stopDeliveries();
    this.identities.stop();
    this.links.stop();
  }
}
