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
  type Span,
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

/** The W3C trace context of a span, to put into an event an adapter publishes. */
export function traceContextOf(span: Span): TraceContext | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(context.active(), span), carrier);
  const traceparent = carrier["traceparent"];
  if (traceparent === undefined) return undefined;
  return carrier["tracestate"] === undefined
    ? { traceparent }
    : { traceparent, tracestate: carrier["tracestate"] };
}
