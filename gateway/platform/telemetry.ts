/**
 * OpenTelemetry for every fedgate process: traces follow one message from adapter through the core
 * (W3C trace context travels in the event), metrics count decisions.
 */
import { context, metrics, propagation, trace, type Context, type Span } from "@opentelemetry/api";
import { NodeSDK } from "@opentelemetry/sdk-node";
import type { TraceContext } from "../../schemas/types.js";

let sdk: NodeSDK | undefined;

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
  if (endpoint === undefined) {
    sdk = new NodeSDK({
      serviceName: options.serviceName,
      instrumentations: [],
      spanProcessors: [],
      metricReaders: [],
      logRecordProcessors: [],
    });
  } else {
    process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint;
    sdk = new NodeSDK({ serviceName: options.serviceName, instrumentations: [] });
  }
  sdk.start();
}

export async function stopTelemetry(): Promise<void> {
  await sdk?.shutdown();
  sdk = undefined;
}

export const tracer = trace.getTracer("fedgate");
export const meter = metrics.getMeter("fedgate");

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
