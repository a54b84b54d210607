/**
 * The adapter runtime against a real nats-server: a delivery that takes longer than the ack wait (a large file
 * to upload) is still handled once, and a bridge that dies is replaced after about the ack wait, not more.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Delivery } from "../../schemas/types.js";
import { AdapterRuntime } from "../../bridges/kit/AdapterRuntime.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { createLogger } from "../../gateway/platform/log.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { eventually, message, xmppRoom } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined)("AdapterRuntime - deliveries against a real nats-server", () => {
  let bus: JetStreamBus;

  beforeAll(async () => {
    if (nats === undefined) return;
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await bus.ensureTopology();
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await bus.close();
    await nats.stop();
  });

  it("AdapterRuntime - a delivery that takes longer than the ack wait is handled once", async () => {
    const runtime = await AdapterRuntime.open(bus, {
      network: "xmpp",
      instance: "slow",
      log,
      ackWaitMs: 1000,
    });
    const handled: string[] = [];
    await runtime.consumeDeliveries(async (delivery) => {
      handled.push(delivery.id);
      // Three ack waits: without a sign of progress the server would hand the delivery out again.
      if (handled.length === 1) await new Promise((resolve) => setTimeout(resolve, 3500));
      return undefined;
    });
    const target = { ...xmppRoom, instance: "slow" };
    for (const n of [1, 2]) {
      const delivery: Delivery = {
        specVersion: "1",
        id: `slow-delivery-${String(n)}`,
        event: message(
          { network: "matrix", instance: "tchap", conversation: "!r:tchap", agency: "dinum-mi" },
          `n${String(n)}`,
        ),
        target,
      };
      await bus.publish(subjects.outbound("xmpp", "slow"), encodeJson(delivery), { msgId: delivery.id });
    }
    await eventually(() => (handled.length >= 2 ? true : undefined), 15_000, "both deliveries");
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(handled).toEqual(["slow-delivery-1", "slow-delivery-2"]);
    await runtime.close();
  });
});
