/**
 * What a following gateway holds for the hub's order. In a conversation a partner gateway orders (a link's
 * orderedBy), an event written on one of this gateway's networks goes to the hub at once; its deliveries to
 * this gateway's other networks wait here until the hub returns the event in its order, among the events of
 * the other gateways. So every network, here and there, sees the conversation in the hub's one order.
 *
 * The deliveries are decided (policy, audit) when the event is routed, and stored here before the event goes
 * to the hub: the hub's copy only says when, never what, so a hub cannot put words in this gateway's
 * networks. A hub that does not return an event within orderWaitMs (away, or it refused the event) does not
 * stop the conversation on this side: the deliveries go out unordered, logged and counted.
 *
 * Held entries are in a bucket, so a restart loses none; releasing one twice (the hub's copy and the time
 * limit at once, or two replicas) stores each delivery once, by its id.
 */
import type { Logger } from "pino";
import type { Delivery } from "../../../schemas/types.js";
import type { Bus } from "../../platform/bus/Bus.js";
import { decodeJson, encodeJson, keyToken, type KeyValueStore } from "../../platform/bus/KeyValueStore.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { errorCode } from "../../../schemas/contract/errors.js";
import { counter } from "../../platform/telemetry.js";
import { encodeDelivery } from "./encodeDelivery.js";

const releasedUnordered = counter("fedgate.federation.order_timeouts", {
  description:
    "Held events delivered to this gateway's other networks without the hub's order: it did not return them within federation.orderWaitMs",
});

/** A held event: when it was held, its bytes as routed, and its deliveries to this gateway's networks. */
interface HeldEntry {
  eventId: string;
  at: number;
  event: string;
  deliveries: Omit<Delivery, "event">[];
}

export interface HeldDeliveriesOptions {
  bus: Bus;
  /** federation.orderWaitMs. */
  orderWaitMs: number;
  log: Logger;
}

export class HeldDeliveries {
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  private constructor(
    private readonly kv: KeyValueStore,
    private readonly options: HeldDeliveriesOptions,
  ) {}

  static async open(options: HeldDeliveriesOptions): Promise<HeldDeliveries> {
    const held = new HeldDeliveries(await options.bus.keyValue(buckets.held), options);
    // Checked four times per wait, so an event waits at most a quarter longer than orderWaitMs.
    held.sweeper = setInterval(
      () => {
        held.sweeping ??= held.releaseOverdue().finally(() => {
          held.sweeping = undefined;
        });
      },
      Math.max(50, options.orderWaitMs / 4),
    );
    return held;
  }

  /** Stores an event's deliveries until the hub returns it; resolves once they are stored. */
  async hold(eventId: string, eventJson: Uint8Array, deliveries: Omit<Delivery, "event">[]): Promise<void> {
    const entry: HeldEntry = {
      eventId,
      at: Date.now(),
      event: Buffer.from(eventJson).toString("base64"),
      deliveries,
    };
    await this.kv.put(keyToken(eventId), encodeJson(entry));
  }

  /** Delivers what is held for an event and forgets it; false when nothing was held for it. */
  async release(eventId: string): Promise<boolean> {
    const key = keyToken(eventId);
    const stored = await this.kv.get(key);
    if (stored === undefined) return false;
    await this.deliver(decodeJson(stored.value) as HeldEntry);
    await this.kv.delete(key);
    return true;
  }

  private async deliver(entry: HeldEntry): Promise<void> {
    const eventJson = Buffer.from(entry.event, "base64");
    await Promise.all(
      entry.deliveries.map((delivery) =>
        this.options.bus.publish(
          subjects.outbound(delivery.target.network, delivery.target.instance),
          encodeDelivery(delivery, eventJson),
          { msgId: delivery.id },
        ),
      ),
    );
  }

  /** Delivers, oldest first, what the hub has not returned within orderWaitMs. */
  private async releaseOverdue(): Promise<void> {
    const { orderWaitMs, log } = this.options;
    try {
      const overdue: { key: string; entry: HeldEntry }[] = [];
      for (const key of await this.kv.keys()) {
        const stored = await this.kv.get(key);
        if (stored === undefined) continue;
        const entry = decodeJson(stored.value) as HeldEntry;
        if (Date.now() - entry.at >= orderWaitMs) overdue.push({ key, entry });
      }
      overdue.sort((a, b) => a.entry.at - b.entry.at);
      for (const { key, entry } of overdue) {
        await this.deliver(entry);
        await this.kv.delete(key);
        releasedUnordered.add(1);
        log.warn(
          { eventId: entry.eventId, waitedMs: Date.now() - entry.at },
          "the hub did not return the event in its order in time; delivered to this gateway's networks without it",
        );
      }
    } catch (error) {
      // Tried again at the next sweep: nothing is forgotten before it was delivered.
      log.warn({ code: errorCode(error), err: error }, "held deliveries not checked; checked again shortly");
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    await this.sweeping;
  }
}
