/** Reading metrics in Prometheus' text format, as a Prometheus server scrapes them from /metrics. */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { metricsHandler } from "../../gateway/platform/telemetry.js";

/** The lines of the series `name` whose labels include every one of `labels`. */
export function series(text: string, name: string, labels: Record<string, string> = {}): string[] {
  return text
    .split("\n")
    .filter(
      (line) =>
        (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) &&
        Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`)),
    );
}

/** The sum of the values of the series `name` whose labels include every one of `labels`; 0 when there is none. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  return series(text, name, labels).reduce(
    (total, line) => total + Number(line.slice(line.lastIndexOf(" ") + 1)),
    0,
  );
}

/** This process's metrics, as its /metrics answers (the telemetry must be started). */
export async function scrapeThisProcess(): Promise<string> {
  const server = createServer(metricsHandler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text();
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
