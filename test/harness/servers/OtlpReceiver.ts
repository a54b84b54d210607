/**
 * An OTLP/HTTP endpoint that accepts every export and counts it: what a collector costs the core to talk to
 * (serialising, sending), without a collector's own CPU on the machine. It answers each POST to /v1/traces
 * and /v1/metrics with an empty success, which OTLP reads as "all accepted". Traces exported as JSON
 * (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json) are kept as spans, for tests to follow a trace across processes.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface OtlpCounts {
  traces: number;
  metrics: number;
  bytes: number;
}

/** A span as an exporting process reported it: the service it ran in and its place in its trace. */
export interface ReceivedSpan {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  /** Absent on a trace's root span. */
  parentSpanId?: string;
  /** The span's string attributes. */
  attributes: Record<string, string>;
}

/** What an OTLP/JSON trace export holds of the fields read here (ids are hex strings in OTLP/JSON). */
interface TraceExport {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value?: { stringValue?: string } }[] };
    scopeSpans?: {
      spans?: {
        name: string;
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        attributes?: { key: string; value?: { stringValue?: string } }[];
      }[];
    }[];
  }[];
}

function spansOf(body: Buffer): ReceivedSpan[] {
  const exported = JSON.parse(body.toString("utf8")) as TraceExport;
  return (exported.resourceSpans ?? []).flatMap((resourceSpans) => {
    const service =
      resourceSpans.resource?.attributes?.find((a) => a.key === "service.name")?.value?.stringValue ?? "";
    return (resourceSpans.scopeSpans ?? []).flatMap((scope) =>
      (scope.spans ?? []).map(({ name, traceId, spanId, parentSpanId, attributes }) => ({
        service,
        name,
        traceId,
        spanId,
        ...(parentSpanId === undefined || parentSpanId === "" ? {} : { parentSpanId }),
        attributes: Object.fromEntries(
          (attributes ?? []).flatMap((a) =>
            a.value?.stringValue === undefined ? [] : [[a.key, a.value.stringValue]],
          ),
        ),
      })),
    );
  });
}

export class OtlpReceiver {
  private constructor(
    private readonly server: Server,
    readonly counts: OtlpCounts,
    /** Every span exported as JSON, in the order received. */
    readonly spans: ReceivedSpan[],
  ) {}

  get url(): string {
    return `http://127.0.0.1:${String((this.server.address() as AddressInfo).port)}`;
  }

  static async start(): Promise<OtlpReceiver> {
    const counts: OtlpCounts = { traces: 0, metrics: 0, bytes: 0 };
    const spans: ReceivedSpan[] = [];
    const server = createServer((req, res) => {
      let bytes = 0;
      const json = req.headers["content-type"]?.includes("json") === true;
      const keep = json && req.method === "POST" && req.url === "/v1/traces";
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (keep) chunks.push(chunk);
      });
      req.on("end", () => {
        const known = req.method === "POST" && (req.url === "/v1/traces" || req.url === "/v1/metrics");
        if (known) {
          if (req.url === "/v1/traces") counts.traces++;
          else counts.metrics++;
          counts.bytes += bytes;
        }
        if (keep) spans.push(...spansOf(Buffer.concat(chunks)));
        // An empty protobuf message and an empty JSON object both say nothing was rejected.
        res.writeHead(known ? 200 : 404, {
          "content-type": json ? "application/json" : "application/x-protobuf",
        });
        res.end(json && known ? "{}" : undefined);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new OtlpReceiver(server, counts, spans);
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
