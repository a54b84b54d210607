/**
 * Structured JSON logs (pino). Secrets are redacted by path, so a logged config or request never shows them.
 * A line logged while a traced span is active names its trace_id and span_id, to find the trace of a log line.
 */
import { isSpanContextValid, trace } from "@opentelemetry/api";
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

const redact = {
  paths: [
    "password",
    "token",
    "*.password",
    "*.token",
    "*.*.password",
    "*.*.token",
    "headers.authorization",
    "req.headers.authorization",
    "authorization",
  ],
  censor: "[redacted]",
};

/** The active span's ids, when there is one with a valid context (spans are active only while recorded). */
function traceIds(): Record<string, string> {
  const context = trace.getActiveSpan()?.spanContext();
  // A new object each time: pino merges the line's own fields into what the mixin returns.
  if (context === undefined || !isSpanContextValid(context)) return {};
  return { trace_id: context.traceId, span_id: context.spanId };
}

/** A JSON logger to stdout, or to `destination` (tests capture the output that way). */
export function createLogger(
  level: LevelWithSilent = "info",
  name = "fedgate",
  destination?: DestinationStream,
): Logger {
  const options = { name, level, redact, base: { pid: process.pid }, mixin: traceIds };
  return destination === undefined ? pino(options) : pino(options, destination);
}
