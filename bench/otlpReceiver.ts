/**
 * An OTLP/HTTP endpoint that accepts every export and counts it: what a collector costs the core to talk to
 * (serialising, sending), without a collector's own CPU on the machine. It answers each POST to /v1/traces
 * and /v1/metrics with an empty success, which OTLP reads as "all accepted".
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface OtlpCounts {
  traces: number;
  metrics: number;
  bytes: number;
}

export class OtlpReceiver {
  private constructor(
    private readonly server: Server,
    readonly counts: OtlpCounts,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${String((this.server.address() as AddressInfo).port)}`;
  }

  static async start(): Promise<OtlpReceiver> {
    const counts: OtlpCounts = { traces: 0, metrics: 0, bytes: 0 };
    const server = createServer((req, res) => {
      let bytes = 0;
      req.on("data", (chunk: Buffer) => (bytes += chunk.length));
      req.on("end", () => {
        const known = req.method === "POST" && (req.url === "/v1/traces" || req.url === "/v1/metrics");
        if (known) {
          if (req.url === "/v1/traces") counts.traces++;
          else counts.metrics++;
          counts.bytes += bytes;
        }
        // An empty protobuf message and an empty JSON object both say nothing was rejected.
        const json = req.headers["content-type"]?.includes("json") === true;
        res.writeHead(known ? 200 : 404, {
          "content-type": json ? "application/json" : "application/x-protobuf",
        });
        res.end(json && known ? "{}" : undefined);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new OtlpReceiver(server, counts);
  }

  /** The counts so far, to take differences from. */
  snapshot(): OtlpCounts {
    return { ...this.counts };
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
