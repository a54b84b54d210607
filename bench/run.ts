/** `npm run bench`: every benchmark, figures and ratios measured in one run on this machine. */
import type { RunFigures } from "./measure.js";
import { runRoutingBenchmark } from "./routing.js";
import { IN_FLIGHT, runMatrixBenchmark } from "./matrix.js";
import { runXmppBenchmark } from "./xmpp.js";

const events = Number(process.env["BENCH_EVENTS"] ?? 20_000);
const latencyEvents = Number(process.env["BENCH_LATENCY_EVENTS"] ?? 2000);
const perSecond = Number(process.env["BENCH_RATE"] ?? 500);
const rounds = Number(process.env["BENCH_ROUNDS"] ?? 3);

const [forwarder, core] = await runRoutingBenchmark({ events, latencyEvents, perSecond, rounds });
if (forwarder === undefined || core === undefined) throw new Error("benchmark produced no figures");

const row = (f: RunFigures): string =>
  `${f.name.padEnd(28)} ${f.throughputPerSecond.toFixed(0).padStart(8)} ev/s   p50 ${f.p50Ms.toFixed(2).padStart(7)} ms   p99 ${f.p99Ms.toFixed(2).padStart(7)} ms`;
console.log(
  `\nrouting (${events} events backlog; latency at ${perSecond} ev/s over ${latencyEvents} events, 64 conversations)`,
);
console.log(row(forwarder));
console.log(row(core));
const ratio = core.throughputPerSecond / forwarder.throughputPerSecond;
console.log(`core / forwarder throughput: ${(ratio * 100).toFixed(1)} %  (target ≥ 50 %)`);
console.log(`core / forwarder p99 latency: ${(core.p99Ms / forwarder.p99Ms).toFixed(2)}x`);

const xmppRate = Number(process.env["BENCH_XMPP_RATE"] ?? 200);
const [raw, bridged] = await runXmppBenchmark({
  events: Number(process.env["BENCH_XMPP_EVENTS"] ?? 2000),
  perSecond: xmppRate,
});
if (raw === undefined || bridged === undefined) throw new Error("XMPP benchmark produced no figures");
bridgeSection(
  `XMPP (${raw.events} messages sent as fast as the client can, then ${raw.events} at ${xmppRate}/s)`,
  raw,
  bridged,
);

const matrixRate = Number(process.env["BENCH_MATRIX_RATE"] ?? 20);
const [matrixRaw, matrixBridged] = await runMatrixBenchmark({
  events: Number(process.env["BENCH_MATRIX_EVENTS"] ?? 500),
  perSecond: matrixRate,
});
if (matrixRaw === undefined || matrixBridged === undefined)
  throw new Error("Matrix benchmark produced no figures");
bridgeSection(
  `Matrix (${matrixRaw.events} messages sent as fast as the client can with ${IN_FLIGHT} in flight, then ${matrixRaw.events} at ${matrixRate}/s)`,
  matrixRaw,
  matrixBridged,
);

/** A bridge's figures next to client-to-client delivery through the same server. */
function bridgeSection(title: string, client: RunFigures, bridge: RunFigures): void {
  const messageRow = (f: RunFigures): string =>
    `${f.name.padEnd(36)} ${f.throughputPerSecond.toFixed(0).padStart(7)} msg/s   p50 ${f.p50Ms.toFixed(2).padStart(7)} ms   p99 ${f.p99Ms.toFixed(2).padStart(7)} ms`;
  console.log(`\n${title}`);
  console.log(messageRow(client));
  console.log(messageRow(bridge));
  console.log(
    `bridge / client-to-client throughput: ${((bridge.throughputPerSecond / client.throughputPerSecond) * 100).toFixed(1)} %`,
  );
  console.log(`bridge / client-to-client p99 latency: ${(bridge.p99Ms / client.p99Ms).toFixed(2)}x`);
}
