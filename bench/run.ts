/** `npm run bench`: every benchmark, figures and ratios measured in one run on this machine. */
import type { RunFigures } from "./measure.js";
import { runShippedRoutingBenchmark, shippedRoutingReport } from "./coreProcess.js";
import { endToEndSection } from "./endToEnd.js";
import { IN_FLIGHT, runMatrixBenchmark } from "./matrix.js";
import { printMessageMap, runMessageMapBenchmark } from "./messageMap.js";
import { runStashcatBenchmark, STASHCAT_IN_FLIGHT } from "./stashcat.js";
import { runXmppBenchmark } from "./xmpp.js";

const replicaLinks = process.env["BENCH_REPLICA_LINKS"] ?? "1000";
const routing = await runShippedRoutingBenchmark({
  linkCounts: (process.env["BENCH_LINKS"] ?? "10,1000,10000,50000").split(",").map(Number),
  events: Number(process.env["BENCH_EVENTS"] ?? 20_000),
  latencyEvents: Number(process.env["BENCH_LATENCY_EVENTS"] ?? 5000),
  replicaLinks: replicaLinks === "none" ? undefined : Number(replicaLinks),
});
console.log(shippedRoutingReport(routing));

// The message map at the gateway's default byte limit, then at a small one that it outgrows.
const mapMessages = Number(process.env["BENCH_MAP_MESSAGES"] ?? 200_000);
const smallLimitMiB = Number(process.env["BENCH_MAP_LIMIT_MIB"] ?? 64);
if (mapMessages > 0) {
  printMessageMap(await runMessageMapBenchmark({ messages: mapMessages }));
  printMessageMap(
    await runMessageMapBenchmark({ messages: mapMessages, maxBytes: smallLimitMiB * 1024 * 1024 }),
  );
}
if (process.env["BENCH_ROUTING_ONLY"] === "1") process.exit();

await bridgeBenchmark(
  "XMPP",
  { events: 2000, perSecond: 200 },
  runXmppBenchmark,
  "messages sent as fast as the client can",
);
await bridgeBenchmark(
  "Matrix",
  { events: 500, perSecond: 20 },
  runMatrixBenchmark,
  `messages sent as fast as the client can with ${IN_FLIGHT} in flight`,
);
await bridgeBenchmark(
  "Stashcat",
  { events: 1000, perSecond: 100 },
  runStashcatBenchmark,
  `encrypted messages sent as fast as the client can with ${STASHCAT_IN_FLIGHT} in flight`,
);
// Every pair of networks through the core, next to client-to-client delivery on each server.
await endToEndSection();

/**
 * Runs one bridge's benchmark, its figures from BENCH_<NAME>_EVENTS and BENCH_<NAME>_RATE or `defaults`,
 * and prints its section; `burst` says how the first run sends.
 */
async function bridgeBenchmark(
  name: string,
  defaults: { events: number; perSecond: number },
  run: (options: { events: number; perSecond: number }) => Promise<RunFigures[]>,
  burst: string,
): Promise<void> {
  const prefix = `BENCH_${name.toUpperCase()}`;
  const events = Number(process.env[`${prefix}_EVENTS`] ?? defaults.events);
  const perSecond = Number(process.env[`${prefix}_RATE`] ?? defaults.perSecond);
  const [client, bridge, ...more] = await run({ events, perSecond });
  if (client === undefined || bridge === undefined) throw new Error(`${name} benchmark produced no figures`);
  bridgeSection(`${name} (${events} ${burst}, then ${events} at ${perSecond}/s)`, client, bridge, more);
}

/**
 * A bridge's figures next to client-to-client delivery through the same server, and any further runs of the
 * bridge (the Matrix bridge in an encrypted room) next to both.
 */
function bridgeSection(title: string, client: RunFigures, bridge: RunFigures, more: RunFigures[] = []): void {
  const messageRow = (f: RunFigures): string =>
    `${f.name.padEnd(36)} ${f.throughputPerSecond.toFixed(0).padStart(7)} msg/s   p50 ${f.p50Ms.toFixed(2).padStart(7)} ms   p99 ${f.p99Ms.toFixed(2).padStart(7)} ms`;
  const ratios = (what: string, of: RunFigures, to: RunFigures): void => {
    console.log(
      `${what} throughput: ${((of.throughputPerSecond / to.throughputPerSecond) * 100).toFixed(1)} %`,
    );
    console.log(`${what} p99 latency: ${(of.p99Ms / to.p99Ms).toFixed(2)}x`);
  };
  console.log(`\n${title}`);
  for (const figures of [client, bridge, ...more]) console.log(messageRow(figures));
  ratios("bridge / client-to-client", bridge, client);
  for (const figures of more) {
    ratios(`${figures.name} / bridge`, figures, bridge);
    ratios(`${figures.name} / client-to-client`, figures, client);
  }
}
