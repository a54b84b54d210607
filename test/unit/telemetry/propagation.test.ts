/**
 * One message's trace across the bus: the publishing adapter's span, the core's route span and the delivering
 * adapter's span, linked through the W3C trace context in the bus messages' headers (and the event's trace
 * field where headers are lost). Recorded with an in-memory exporter, all three in one process.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NodeSDK, tracing } from "@opentelemetry/sdk-node";
import { AdapterRuntime } from "../../../bridges/kit/AdapterRuntime.js";
import type { Delivery } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { PolicyEngine } from "../../../gateway/core/policy/PolicyEngine.js";
import { Router } from "../../../gateway/core/routing/Router.js";
import { DeliveryLedger } from "../../../gateway/core/routing/DeliveryLedger.js";
import { IdentityStore } from "../../../gateway/platform/stores/IdentityStore.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { crossBorderLink, eventually, examplePolicyFile, message, xmppRoom } from "../../helpers/fixtures.js";

const log = createLogger("silent");
const exporter = new tracing.InMemorySpanExporter();
const sdk = new NodeSDK({
  serviceName: "fedgate-test",
  instrumentations: [],
  spanProcessors: [new tracing.SimpleSpanProcessor(exporter)],
  metricReaders: [],
  logRecordProcessors: [],
});

function spanNamed(name: string): tracing.ReadableSpan {
  const span = exporter.getFinishedSpans().find((s) => s.name === name);
  if (span === undefined) throw new Error(`no span ${name}`);
  return span;
}

describe("telemetry - trace context in the bus messages' headers", () => {
  beforeAll(() => sdk.start());
  afterAll(() => sdk.shutdown());
  beforeEach(() => exporter.reset());

  it("telemetry - native receive, route and native send are one trace: each span the child of the one before", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const links = new LinkStore(await bus.keyValue("links"));
    const identities = new IdentityStore(await bus.keyValue("identities"));
    await Promise.all([links.start(), identities.start()]);
    await links.create(crossBorderLink);
    const policy = await PolicyEngine.fromFile(examplePolicyFile);
    const ledger = new DeliveryLedger(await bus.keyValue("deliveries"));
    const router = new Router({ bus, links, identities, ledger, policy: () => policy, log });
    const xmpp = await AdapterRuntime.open(bus, { network: "xmpp", instance: "bpol", log });
    const stashcat = await AdapterRuntime.open(bus, { network: "stashcat", instance: "ni", log });
    const sent: Delivery[] = [];
    await stashcat.consumeDeliveries((delivery) => {
      sent.push(delivery);
      return Promise.resolve("native-1");
    });

    await xmpp.publish(message(xmppRoom, "Lage ruhig"));
    const [inbound] = bus.messages(subjects.inboundAll);
    expect(inbound?.headers["traceparent"]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await router.handle({
      ...(inbound ?? { subject: "", data: new Uint8Array(), headers: {}, seq: 1 }),
      deliveryCount: 1,
    });
    await eventually(() => (sent.length > 0 ? true : undefined), 2000, "the delivery sent");
    await eventually(() => (exporter.getFinishedSpans().length >= 3 ? true : undefined), 2000, "three spans");

    const receive = spanNamed("fedgate.receive");
    const route = spanNamed("fedgate.route");
    const deliver = spanNamed("fedgate.deliver");
    const traceId = receive.spanContext().traceId;
    expect(route.spanContext().traceId).toBe(traceId);
    expect(deliver.spanContext().traceId).toBe(traceId);
    expect(receive.parentSpanContext).toBeUndefined();
    expect(route.parentSpanContext?.spanId).toBe(receive.spanContext().spanId);
    expect(deliver.parentSpanContext?.spanId).toBe(route.spanContext().spanId);
    // The event keeps the publishing adapter's context for consumers that see no headers.
    expect(sent[0]?.event.trace?.traceparent).toBe(inbound?.headers["traceparent"]);
    const [outbound] = bus.messages(subjects.outbound("stashcat", "ni"));
    expect(outbound?.headers["traceparent"]).toContain(route.spanContext().spanId);
    await Promise.all([xmpp.close(), stashcat.close()]);
    links.stop();
    identities.stop();
  });

  it("telemetry - a delivery without trace headers continues the trace its event carries", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const stashcat = await AdapterRuntime.open(bus, { network: "stashcat", instance: "ni", log });
    let handled = 0;
    await stashcat.consumeDeliveries(() => {
      handled++;
      return Promise.resolve(undefined);
    });
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const delivery: Delivery = {
      specVersion: "1",
      id: "delivery-traced",
      event: { ...message(xmppRoom, "Lage ruhig"), trace: { traceparent } },
      target: { network: "stashcat", instance: "ni", conversation: "channel:1001", agency: "polizei-ni" },
    };
    await bus.publish(subjects.outbound("stashcat", "ni"), encodeJson(delivery));
    await eventually(() => (handled > 0 ? true : undefined), 2000, "the delivery handled");
    await eventually(() => (exporter.getFinishedSpans().length > 0 ? true : undefined), 2000, "the span");
    const deliver = spanNamed("fedgate.deliver");
    expect(deliver.spanContext().traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(deliver.parentSpanContext?.spanId).toBe("00f067aa0ba902b7");
    await stashcat.close();
  });
});
