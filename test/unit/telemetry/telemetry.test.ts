import { trace } from "@opentelemetry/api";
import { afterAll, describe, expect, it } from "vitest";
import { AdapterRuntime } from "../../../bridges/kit/AdapterRuntime.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { message, xmppRoom } from "../../helpers/fixtures.js";
import {
  contextOf,
  startTelemetry,
  stopTelemetry,
  traceContextOf,
  tracer,
} from "../../../gateway/platform/telemetry.js";

describe("telemetry - W3C trace context follows a message", () => {
  afterAll(() => stopTelemetry());

  it("telemetry - a span started from an event's traceparent continues that trace into what the core publishes", () => {
    startTelemetry({ serviceName: "fedgate-test" });
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const span = tracer.startSpan("route", {}, contextOf({ traceparent }));
    expect(span.spanContext().traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    const outgoing = traceContextOf(span);
    // With no exporter configured nothing is recorded, so the context passes through unchanged.
    expect(outgoing?.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    span.end();
    expect(trace.getSpan(contextOf(undefined))).toBeUndefined();
  });

  it("telemetry - without a tracer an adapter publishes as before: no trace headers, no trace field", async () => {
    startTelemetry({ serviceName: "fedgate-test" });
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const xmpp = await AdapterRuntime.open(bus, {
      network: "xmpp",
      instance: "bpol",
      log: createLogger("silent"),
    });
    await xmpp.publish(message(xmppRoom, "Lage ruhig"));
    const [inbound] = bus.messages(subjects.inboundAll);
    expect(inbound?.headers).toEqual({});
    expect(JSON.parse(Buffer.from(inbound?.data ?? []).toString())).not.toHaveProperty("trace");
    await xmpp.close();
  });
});
