/**
 * The probes every fedgate process answers, unauthenticated as a kubelet and Prometheus call them: GET /healthz
 * (liveness: the process runs its event loop), GET /readyz (readiness: every check passes) and GET /metrics.
 * No content ever: only states, counts and timings.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { metricsHandler } from "../telemetry.js";

/** Named checks, each true when what it names works: `{nats: true, server: false}`. */
export type Readiness = () => Record<string, boolean> | Promise<Record<string, boolean>>;

/** Answers a probe and returns true, or returns false for any other request. */
export function answerProbe(
  request: IncomingMessage,
  response: ServerResponse,
  readiness: Readiness,
  log: Logger,
): boolean {
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  const path = (request.url ?? "").split("?")[0];
  switch (path) {
    case "/healthz":
      json(response, 200, { status: "ok" });
      return true;
    case "/metrics":
      metricsHandler(request, response);
      return true;
    case "/readyz":
      // A check that throws, at once or later, reads as not ready.
      Promise.resolve()
        .then(readiness)
        .then(
          (checks) => {
            const ready = Object.values(checks).every((ok) => ok);
            json(response, ready ? 200 : 503, { status: ready ? "ready" : "not-ready", checks });
          },
          (error: unknown) => {
            log.warn({ err: error }, "readiness check failed");
            json(response, 503, { status: "not-ready", checks: {} });
          },
        );
      return true;
    default:
      return false;
  }
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.statusCode = status;
  // Live state: no cache should keep it.
  response.setHeader("Cache-Control", "no-store");
  response.setHeader("Content-Type", "application/json; charset=utf-8");
  response.end(JSON.stringify(body));
}
