/** A fake adapter on a real bus: records what it is given and answers with native ids "<instance>-<n>". */
import type { Delivery } from "../../schemas/types.js";
import { AdapterRuntime, type NativeRelations } from "../../bridges/kit/AdapterRuntime.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { createLogger } from "../../gateway/platform/log.js";

export interface Received {
  delivery: Delivery;
  relations: NativeRelations;
}

export class RecordingAdapter {
  readonly received: Received[] = [];
  private counter = 0;
  constructor(
    readonly runtime: AdapterRuntime,
    readonly instance: string,
  ) {}

  static async open(bus: Bus, network: string, instance: string): Promise<RecordingAdapter> {
    const runtime = await AdapterRuntime.open(bus, {
      network,
      instance,
      log: createLogger("silent"),
      ackWaitMs: 2000,
    });
    const adapter = new RecordingAdapter(runtime, instance);
    await runtime.consumeDeliveries((delivery, relations) => {
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
