/** A fake adapter on a real bus: records what it is given and answers with native ids "<instance>-<n>". */
import type { Delivery } from "../../schemas/types.js";
import { AdapterRuntime, type NativeRelations } from "../../bridges/kit/AdapterRuntime.js";
import type { Capabilities } from "../../bridges/kit/capabilities.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { createLogger } from "../../gateway/platform/log.js";

export interface Received {
  delivery: Delivery;
  relations: NativeRelations;
}

export interface RecordingOptions {
  /** The error a delivery fails with (a PermanentError dead-letters it), or undefined to take it. */
  refuse?: (delivery: Delivery) => Error | undefined;
  /** What the network can show; by default everything. */
  capabilities?: Capabilities;
}

export class RecordingAdapter {
  readonly received: Received[] = [];
  /** Deliveries the adapter failed, as `refuse` said. */
  readonly refused: Delivery[] = [];
  private counter = 0;
  constructor(
    readonly runtime: AdapterRuntime,
    readonly instance: string,
  ) {}

  static async open(
    bus: Bus,
    network: string,
    instance: string,
    { refuse, capabilities }: RecordingOptions = {},
  ): Promise<RecordingAdapter> {
    const runtime = await AdapterRuntime.open(bus, {
      network,
      instance,
      log: createLogger("silent"),
      ackWaitMs: 2000,
      ...(capabilities === undefined ? {} : { capabilities }),
    });
    const adapter = new RecordingAdapter(runtime, instance);
    await runtime.consumeDeliveries((delivery, relations) => {
      const refusal = refuse?.(delivery);
      if (refusal !== undefined) {
        adapter.refused.push(delivery);
        return Promise.reject(refusal);
      }
      adapter.received.push({ delivery, relations });
      return Promise.resolve(`${instance}-${++adapter.counter}`);
    });
    return adapter;
  }

  of(eventId: string): Received[] {
    return this.received.filter((r) => r.delivery.event.id === eventId);
  }

  notices(): Received[] {
    return this.received.filter((r) => r.delivery.event.type === "notice");
  }
}
