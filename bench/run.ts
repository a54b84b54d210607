/** `npm run bench`: every benchmark, figures and ratios measured in one run on this machine. */
import { runRoutingBenchmark } from "./routing.js";

const events = Number(process.env["BENCH_EVENTS"] ?? 20_000);
const latencyEvents = Number(process.env["BENCH_LATENCY_EVENTS"] ?? 2000);
const perSecond = Number(process.env["BENCH_RATE"] ?? 500);
const rounds = Number(process.env["BENCH_ROUNDS"] ?? 3);

const [forwarder, core] = await runRoutingBenchmark({ events, latencyEvents, perSecond, rounds });
if (forwarder === undefined || core === undefined) throw new Error("benchmark produced no figures");

const row = (f: typeof core): string =>
  `${f.name.padEnd(28)} ${f.throughputPerSecond.toFixed(0).padStart(8)} ev/s   p50 ${f.p50Ms.toFixed(2).padStart(7)} ms   p99 ${f.p99Ms.toFixed(2).padStart(7)} ms`;
console.log(
  `\nrouting (${events} events backlog; latency at ${perSecond} ev/s over ${latencyEvents} events, 64 conversations)`,
);
console.log(row(forwarder));
console.log(row(core));
const ratio = core.throughputPerSecond / forwarder.throughputPerSecond;
console.log(`core / forwarder throughput: ${(ratio * 100).toFixed(1)} %  (target ≥ 50 %)`);
console.log(`core / forwarder p99 latency: ${(core.p99Ms / forwarder.p99Ms).toFixed(2)}x`);
