import { Writable } from "node:stream";
import { pino } from "pino";
import { NodeSDK, tracing } from "@opentelemetry/sdk-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../../gateway/platform/log.js";
import { tracer, withSpan } from "../../../gateway/platform/telemetry.js";

describe("log - secrets never reach the log", () => {
  it("log - passwords, tokens and authorization headers are redacted wherever they sit", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = createLogger("info", "test", sink);
    log.info({ nats: { url: "nats://x", password: "hunter2", token: "tok-123" } }, "config");
    log.info({ config: { admin: { token: { value: "admin-secret" } } } }, "nested");
    log.warn({ req: { headers: { authorization: "Bearer abc.def" } } }, "request");
    const text = lines.join("");
    for (const secret of ["hunter2", "tok-123", "admin-secret", "abc.def"])
      expect(text).not.toContain(secret);
    expect(text).toContain("[redacted]");
    expect(text).toContain("nats://x");
  });

  it("log - the logger is pino's, so levels filter as configured", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = createLogger("warn", "test", sink);
    log.info("hidden");
    log.warn("shown");
    expect(lines).toHaveLength(1);
    expect(pino.levels.values["warn"]).toBe(40);
  });
});

describe("log - a line logged inside a traced span names the trace", () => {
  const exporter = new tracing.InMemorySpanExporter();
  const sdk = new NodeSDK({
    serviceName: "fedgate-test",
    instrumentations: [],
    spanProcessors: [new tracing.SimpleSpanProcessor(exporter)],
    metricReaders: [],
    logRecordProcessors: [],
  });
  beforeAll(() => sdk.start());
  afterAll(() => sdk.shutdown());

  it("log - trace_id and span_id of the active span, and none outside a span", () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const log = createLogger("info", "test", sink);
    const span = tracer.startSpan("fedgate.route");
    withSpan(span, () => log.info("inside"));
    span.end();
    log.info("outside");
    const [inside, outside] = lines;
    expect(inside?.["trace_id"]).toBe(span.spanContext().traceId);
    expect(inside?.["span_id"]).toBe(span.spanContext().spanId);
    expect(outside).not.toHaveProperty("trace_id");
    expect(outside).not.toHaveProperty("span_id");
  });
});
