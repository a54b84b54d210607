/**
 * OpenTelemetry for every fedgate process: traces follow one message from adapter through the core
 * (W3C trace context travels in the event), metrics count decisions and are scraped from /metrics.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  context,
  metrics,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type Meter,
  type MetricOptions,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
} from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { metrics as sdkMetrics, NodeSDK } from "@opentelemetry/sdk-node";
import type { TraceContext } from "../../schemas/types.js";

let sdk: NodeSDK | undefined;
/** What /metrics answers with: the SDK's metrics in Prometheus' text format, read when scraped. */
let prometheus: PrometheusExporter | undefined;

export interface TelemetryOptions {
  serviceName: string;
  otlpEndpoint?: string;
}

/**
 * Starts the OpenTelemetry SDK. With an OTLP endpoint (from the config or OTEL_EXPORTER_OTLP_ENDPOINT) the
 * SDK exports and samples as the OpenTelemetry environment variables say (OTEL_TRACES_SAMPLER). Without one
 * it registers no tracer: spans cost next to nothing, start no trace of their own, and a trace context an
 * event carries passes through them unchanged.
 */
export function startTelemetry(options: TelemetryOptions): void {
  if (sdk !== undefined) return;
  const endpoint = options.otlpEndpoint ?? process.env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  // Served by the process's own HTTP server (metricsHandler), not one of the exporter's: one port to open.
  prometheus = new PrometheusExporter({ preventServerStart: true });
  if (endpoint === undefined) {
    sdk = new NodeSDK({
      serviceName: options.serviceName,
      instrumentations: [],
      spanProcessors: [],
      metricReaders: [prometheus],
      logRecordProcessors: [],
    });
  } else {
    process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint;
    sdk = new NodeSDK({
      serviceName: options.serviceName,
      instrumentations: [],
      metricReaders: [
        prometheus,
        new sdkMetrics.PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() }),
      ],
    });
  }
  sdk.start();
  for (const gauge of gauges) registerGauge(gauge);
}

export async function stopTelemetry(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
  prometheus = undefined;
}

/** GET /metrics: the metrics in Prometheus' text format; 503 while telemetry is not started. */
export function metricsHandler(request: IncomingMessage, response: ServerResponse): void {
  if (prometheus === undefined) {
    response.statusCode = 503;
    response.end("telemetry is not started\n");
    return;
  }
  prometheus.getMetricsRequestHandler(request, response);
}

/**
 * An instrument taken from the meter provider when it is first used. A meter taken when a module loads, before
 * the SDK has started, stays a no-op for good: the core's counters never counted.
 */
function lazy<T>(create: (meter: Meter) => T): () => T {
  let instrument: T | undefined;
  return () => (instrument ??= create(metrics.getMeter("fedgate")));
}

export function counter(name: string, options: MetricOptions): Pick<Counter, "add"> {
  const instrument = lazy((meter) => meter.createCounter(name, options));
  return { add: (value: number, attributes?: Attributes) => instrument().add(value, attributes) };
}

export function histogram(name: string, options: MetricOptions): Pick<Histogram, "record"> {
  const instrument = lazy((meter) => meter.createHistogram(name, options));
  return { record: (value: number, attributes?: Attributes) => instrument().record(value, attributes) };
}

type Observe = (report: (value: number, attributes?: Attributes) => void) => void;

/** The gauges asked for, so that a gauge asked for before the SDK started is registered once it starts. */
const gauges = new Set<{ name: string; options: MetricOptions; observe: Observe }>();

function registerGauge(gauge: { name: string; options: MetricOptions; observe: Observe }): void {
  metrics
    .getMeter("fedgate")
    .createObservableGauge(gauge.name, gauge.options)
    .addCallback((result) => {
      if (gauges.has(gauge)) gauge.observe((value, attributes) => result.observe(value, attributes));
    });
}

/**
 * A gauge read when metrics are collected (a scrape, an OTLP export), never on the hot path: `observe` reports
 * each value with its attributes. The function it returns stops the reports (a stopped
 * adapter must not keep reporting its last state).
 */
export function observableGauge(name: string, options: MetricOptions, observe: Observe): () => void {
  const gauge = { name, options, observe };
  gauges.add(gauge);
  if (sdk !== undefined) registerGauge(gauge);
  return () => gauges.delete(gauge);
}

export const tracer = trace.getTracer("fedgate");

/** The context an event's trace field continues, or the active one. */
export function contextOf(traceContext: TraceContext | undefined): Context {
  if (traceContext === undefined) return context.active();
  const carrier: Record<string, string> = { traceparent: traceContext.traceparent };
  if (traceContext.tracestate !== undefined) carrier["tracestate"] = traceContext.tracestate;
  return propagation.extract(context.active(), carrier);
}

/**
 * The context a bus message continues: its W3C `traceparent` header (the span of whoever published it),
 * else the trace field of the event it carries.
 */
export function contextOfMessage(
  headers: Readonly<Record<string, string>>,
  traceContext: TraceContext | undefined,
): Context {
  if (headers["traceparent"] === undefined) return contextOf(traceContext);
  return propagation.extract(context.active(), headers);
}

/**
 * The W3C trace context headers (`traceparent`, `tracestate`) that continue `span`, for a message to publish;
 * undefined when the span has no valid context (no tracer and no trace to continue), so a process without
 * tracing publishes as before.
 */
export function traceHeaders(span: Span): Record<string, string> | undefined {
  if (!isSpanContextValid(span.spanContext())) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
  return carrier["traceparent"] === undefined ? undefined : carrier;
}

/** The W3C trace context of a span, to put into an event an adapter publishes. */
export function traceContextOf(span: Span): TraceContext | undefined {
  const carrier = traceHeaders(span);
  const traceparent = carrier?.["traceparent"];
  if (traceparent === undefined) return undefined;
  return carrier?.["tracestate"] === undefined
    ? { traceparent }
    : { traceparent, tracestate: carrier["tracestate"] };
}

/**
 * Runs `work` with `span` active, so that what it logs carries the span's ids, when the span is recorded; an
 * unrecorded span is not made active: the context manager would follow every promise of the work for nothing.
 */
export function withSpan<T>(span: Span, work: () => T): T {
  return span.isRecording() ? context.with(trace.setSpan(context.active(), span), work) : work();
}

/** Marks `span` as failed with `error`, and gives the error back to be thrown. */
export function failSpan(span: Span, error: unknown): unknown {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR });
  return error;
}
