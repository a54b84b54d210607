/**
 * Routing benchmark of the processes as they ship: `fedgate gateway` (built, NODE_ENV production, the
 * OpenTelemetry SDK started as the CLI starts it) in a child process of its own, against a bare forwarder in
 * another (consume, publish to an outbound subject, ack), both on one nats-server.
 *
 * For each number of links in the store, each process is started on an emptied bus and measured for:
 * start-up until ready (the core's /readyz is 200; the forwarder's consumer pulls); throughput draining a
 * backlog (the processes are stopped with SIGSTOP while it is published, so the drain times routing alone);
 * CPU per event of the process and of nats-server over that drain, from /proc; peak RSS; and latency at a
 * paced load of half the forwarder's throughput. The core runs twice: exporting to an OTLP endpoint (a
 * receiver in this process) and with none. Then 2 core replicas, each pinned to a CPU of its own, against
 * 1 replica pinned the same way.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { stringify } from "yaml";
import type { ConfigInput } from "../test/harness/configInput.js";
import type { Config } from "../schemas/types.js";
import { JetStreamBus } from "../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../gateway/platform/log.js";
import { schemaDir } from "../schemas/contract/schemas.js";
import { buckets } from "../schemas/contract/topology.js";
import { PARTITIONS } from "../schemas/contract/subjects.js";
import { LocalNatsServer } from "../test/harness/servers/LocalNatsServer.js";
import { freePort } from "../test/harness/servers/serverProcess.js";
import { type OtlpCounts, OtlpReceiver } from "../test/harness/servers/OtlpReceiver.js";
import {
  cpuSecondsOf,
  killAllStarted,
  type Launched,
  natsPidOf,
  peakRssOf,
  spawnCore,
  spawnNode,
  stopProcess,
  waitUntil,
} from "./processes.js";
import {
  FORWARDER_READY,
  outboundCount,
  pacedLatency,
  publishBacklog,
  resetBus,
  seedLinks,
} from "./routingLoad.js";

const forwarderJs = fileURLToPath(new URL("forwarderProcess.js", import.meta.url));
const log = createLogger("warn", "fedgate-bench");
const MiB = 1024 * 1024;
/** How long a start or a drain may take before the run fails rather than hangs. */
const START_TIMEOUT_MS = 180_000;
const DRAIN_TIMEOUT_MS = 300_000;

// Whatever ends the bench, no process it started outlives it.
process.on("exit", killAllStarted);

export interface ProcessFigures {
  name: string;
  links: number;
  /** Processes measured together (core replicas). */
  processes: number;
  readyMs: number;
  throughputPerSecond: number;
  /** CPU (user + system) of the measured processes per event of the drain, in µs. */
  cpuUsPerEvent: number;
  /** nats-server's CPU per event of the drain, in µs. */
  natsCpuUsPerEvent: number;
  /** The largest VmHWM of the measured processes, after the drain. */
  peakRssMiB: number;
  /** Latency at a paced load; absent where none was run. */
  paced?: { perSecond: number; p50Ms: number; p99Ms: number };
}

export interface LinkCountFigures {
  links: number;
  forwarder: ProcessFigures;
  coreOtlp: ProcessFigures;
  coreNoEndpoint: ProcessFigures;
}

export interface ShippedRoutingFigures {
  events: number;
  latencyEvents: number;
  byLinks: LinkCountFigures[];
  replicas?: { links: number; one: ProcessFigures; two: ProcessFigures };
  /** What the OTLP receiver got over the whole run. */
  otlp: OtlpCounts;
  seconds: number;
}

/** What every measurement shares: the server, the bench's connections, a folder for configs and logs. */
interface Bench {
  nats: LocalNatsServer;
  natsPid: number;
  nc: NatsConnection;
  bus: JetStreamBus;
  jsm: JetStreamManager;
  otlp: OtlpReceiver;
  dir: string;
  /** Numbers log files and configs apart. */
  started: number;
}

function progress(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

async function launchForwarder(bench: Bench): Promise<Launched> {
  const logFile = join(bench.dir, `forwarder-${String(++bench.started)}.log`);
  const launched = { children: [spawnNode(forwarderJs, [bench.nats.url], { logFile })], logs: [logFile] };
  try {
    await waitUntil(
      launched,
      "the forwarder",
      async () => (await readFile(logFile, "utf8")).includes(FORWARDER_READY),
      START_TIMEOUT_MS,
      5,
    );
  } catch (error) {
    await stopAll(launched);
    throw error;
  }
  return launched;
}

/**
 * `fedgate gateway` replicas, one per entry of `cpus` (a CPU list to pin it to, or undefined), with the
 * admin API (for /readyz) and, with `otlp`, the bench's OTLP receiver as endpoint. Ready when each answers
 * /readyz with 200 and, with several, the partitions are shared out evenly.
 */
async function launchCores(
  bench: Bench,
  options: { otlp: boolean; cpus: (string | undefined)[] },
): Promise<Launched> {
  const launched: Launched = { children: [], logs: [] };
  const adminUrls: string[] = [];
  try {
    for (const cpus of options.cpus) {
      const n = ++bench.started;
      const port = await freePort();
      const config: ConfigInput<Config> = {
        nats: { url: bench.nats.url },
        gateway: { policyFile: join(schemaDir, "examples", "policy.yaml") },
        admin: { host: "127.0.0.1", port, token: { value: randomBytes(24).toString("hex") } },
        ...(options.otlp ? { telemetry: { otlpEndpoint: bench.otlp.url } } : {}),
      };
      const configFile = join(bench.dir, `core-${String(n)}.yaml`);
      await writeFile(configFile, stringify(config), { mode: 0o600 });
      const logFile = join(bench.dir, `core-${String(n)}.log`);
      launched.children.push(spawnCore(configFile, logFile, cpus === undefined ? {} : { cpus }));
      launched.logs.push(logFile);
      adminUrls.push(`http://127.0.0.1:${String(port)}`);
    }
    await waitUntil(
      launched,
      "the core's /readyz",
      async () => {
        const answers = await Promise.all(
          adminUrls.map((url) =>
            fetch(`${url}/readyz`).then(
              (r) => r.status === 200,
              () => false,
            ),
          ),
        );
        return answers.every(Boolean);
      },
      START_TIMEOUT_MS,
      10,
    );
    if (options.cpus.length > 1)
      await waitUntil(
        launched,
        "the partitions to be shared out",
        () => leasesEven(bench, options.cpus.length),
        START_TIMEOUT_MS,
        50,
      );
  } catch (error) {
    await stopAll(launched);
    throw error;
  }
  return launched;
}

/** Whether `replicas` replicas hold the partitions' leases, each an equal share. */
async function leasesEven(bench: Bench, replicas: number): Promise<boolean> {
  const kv = await new Kvm(bench.nc).open(buckets.leases);
  const held = new Map<string, number>();
  for await (const key of await kv.keys("partition.>")) {
    const holder = (await kv.get(key))?.string();
    if (holder !== undefined && holder !== "") held.set(holder, (held.get(holder) ?? 0) + 1);
  }
  return held.size === replicas && [...held.values()].every((count) => count === PARTITIONS / replicas);
}

async function stopAll(launched: Launched): Promise<void> {
  await Promise.all(launched.children.map((child) => stopProcess(child)));
}

function signalAll(launched: Launched, signal: NodeJS.Signals): void {
  for (const child of launched.children) child.kill(signal);
}

async function cpuSeconds(pids: number[]): Promise<number> {
  return (await Promise.all(pids.map(cpuSecondsOf))).reduce((a, b) => a + b, 0);
}

/**
 * Starts processes on an emptied bus and measures them: start-up, the drain of a backlog of `events`, and,
 * unless `paced` is undefined, latency over `paced.events` at `paced.perSecond` (or half the throughput just
 * measured when that is undefined).
 */
async function measureProcesses(
  bench: Bench,
  name: string,
  launch: () => Promise<Launched>,
  options: { links: number; events: number; paced?: { events: number; perSecond?: number } },
): Promise<ProcessFigures> {
  const { jsm, bus, natsPid } = bench;
  progress(`${name}, ${String(options.links)} links`);
  await resetBus(jsm);
  const launchedAt = performance.now();
  const launched = await launch();
  try {
    const readyMs = performance.now() - launchedAt;
    const pids = launched.children.map((child) => child.pid ?? 0);
    signalAll(launched, "SIGSTOP");
    try {
      await publishBacklog(bus, options.events, options.links);
    } finally {
      signalAll(launched, "SIGCONT");
    }
    // Read right after SIGCONT: what a stopped process spends is nothing, and the drain starts now.
    const cpuBefore = await cpuSeconds(pids);
    const natsBefore = await cpuSecondsOf(natsPid);
    // Timed from the first outbound message: the pull that SIGSTOP interrupted is renewed first.
    let first = 0;
    await waitUntil(
      launched,
      `${name}'s first event`,
      async () => (first = await outboundCount(jsm)) > 0,
      DRAIN_TIMEOUT_MS,
      1,
    );
    const drainStart = performance.now();
    let done = first;
    await waitUntil(
      launched,
      `${name} to drain ${String(options.events)} events`,
      async () => (done = await outboundCount(jsm)) >= options.events,
      DRAIN_TIMEOUT_MS,
      10,
    );
    const seconds = (performance.now() - drainStart) / 1000;
    const cpuUsPerEvent = (((await cpuSeconds(pids)) - cpuBefore) * 1e6) / options.events;
    const natsCpuUsPerEvent = (((await cpuSecondsOf(natsPid)) - natsBefore) * 1e6) / options.events;
    const peakRssMiB = Math.max(...(await Promise.all(pids.map(peakRssOf)))) / MiB;
    const throughputPerSecond = (done - first) / seconds;
    const figures: ProcessFigures = {
      name,
      links: options.links,
      processes: pids.length,
      readyMs,
      throughputPerSecond,
      cpuUsPerEvent,
      natsCpuUsPerEvent,
      peakRssMiB,
    };
    if (options.paced !== undefined) {
      const perSecond = options.paced.perSecond ?? throughputPerSecond / 2;
      const { p50, p99 } = await pacedLatency(bench.nc, bus, {
        events: options.paced.events,
        perSecond,
        links: options.links,
        name,
      });
      figures.paced = { perSecond, p50Ms: p50, p99Ms: p99 };
    }
    return figures;
  } finally {
    await stopAll(launched);
  }
}

/** The forwarder, then the core with and without an OTLP endpoint, paced at half the forwarder's throughput. */
async function measureLinkCount(
  bench: Bench,
  links: number,
  settings: { events: number; latencyEvents: number },
): Promise<LinkCountFigures> {
  const { events } = settings;
  const forwarder = await measureProcesses(bench, "bare forwarder", () => launchForwarder(bench), {
    links,
    events,
    paced: { events: settings.latencyEvents },
  });
  const paced = { events: settings.latencyEvents, perSecond: forwarder.paced?.perSecond ?? 1 };
  const core = (name: string, otlp: boolean) =>
    measureProcesses(bench, name, () => launchCores(bench, { otlp, cpus: [undefined] }), {
      links,
      events,
      paced,
    });
  return {
    links,
    forwarder,
    coreOtlp: await core("core, OTLP endpoint", true),
    coreNoEndpoint: await core("core, no endpoint", false),
  };
}

/**
 * One core replica pinned to CPU 0, then two pinned to CPUs 0 and 1, exporting to the OTLP endpoint.
 * nats-server stays free to run on either CPU: on two there is none left to give it alone. The bench itself
 * is idle during the drain (the backlog is published while the replicas are stopped).
 */
async function measureReplicas(
  bench: Bench,
  links: number,
  events: number,
): Promise<NonNullable<ShippedRoutingFigures["replicas"]>> {
  const replicas = (cpus: string[]) =>
    measureProcesses(
      bench,
      cpus.length === 1
        ? "1 core replica (CPU 0)"
        : `${String(cpus.length)} core replicas (CPU ${cpus.join(", ")})`,
      () => launchCores(bench, { otlp: true, cpus }),
      { links, events },
    );
  return { links, one: await replicas(["0"]), two: await replicas(["0", "1"]) };
}

export async function runShippedRoutingBenchmark(settings: {
  linkCounts: number[];
  events: number;
  latencyEvents: number;
  /** Links in the store while replicas are compared; undefined: no replica comparison. */
  replicaLinks: number | undefined;
}): Promise<ShippedRoutingFigures> {
  const runStart = performance.now();
  const dir = await mkdtemp(join(tmpdir(), "fedgate-bench-"));
  const nats = await LocalNatsServer.start();
  // Stopped in order when interrupted: the processes first, then nats-server and its folder.
  const stopOnSignal = (): void => {
    killAllStarted();
    void nats
      .stop()
      .finally(() => void rm(dir, { recursive: true, force: true }).finally(() => process.exit(130)));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const bus = await JetStreamBus.connect({ servers: nats.url, log });
  const otlp = await OtlpReceiver.start();
  try {
    await bus.ensureTopology();
    const bench: Bench = {
      nats,
      natsPid: await natsPidOf(nats.storeDir),
      nc,
      bus,
      jsm: await jetstreamManager(nc),
      otlp,
      dir,
      started: 0,
    };
    const byLinks: LinkCountFigures[] = [];
    let replicas: ShippedRoutingFigures["replicas"];
    const compareReplicas = settings.replicaLinks !== undefined && availableParallelism() >= 2;
    // Ascending, so that each size only adds links to the store; replicas are compared when the store
    // holds just their number of links.
    const sizes = [...new Set([...settings.linkCounts, ...(compareReplicas ? [settings.replicaLinks] : [])])]
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    let seeded = 0;
    for (const links of sizes) {
      if (links > seeded) {
        progress(`storing links ${String(seeded)}…${String(links - 1)}`);
        await seedLinks(bus, seeded, links);
        seeded = links;
      }
      if (settings.linkCounts.includes(links)) byLinks.push(await measureLinkCount(bench, links, settings));
      if (compareReplicas && links === settings.replicaLinks)
        replicas = await measureReplicas(bench, links, settings.events);
    }
    return {
      events: settings.events,
      latencyEvents: settings.latencyEvents,
      byLinks,
      ...(replicas === undefined ? {} : { replicas }),
      otlp: otlp.snapshot(),
      seconds: (performance.now() - runStart) / 1000,
    };
  } finally {
    process.off("SIGINT", stopOnSignal);
    process.off("SIGTERM", stopOnSignal);
    killAllStarted();
    await otlp.close();
    await bus.close();
    await nc.close();
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The tables `npm run bench` prints: figures per link count, the ratios to the forwarder, replicas. */
export function shippedRoutingReport(figures: ShippedRoutingFigures): string {
  // Paced above what the process drains, latency is mostly the queue that builds up: marked with *.
  const over = (f: ProcessFigures): string =>
    f.paced !== undefined && f.paced.perSecond > f.throughputPerSecond ? "*" : "";
  const cells = (f: ProcessFigures): string[] => [
    f.throughputPerSecond.toFixed(0),
    f.paced === undefined ? "–" : f.paced.p50Ms.toFixed(2) + over(f),
    f.paced === undefined ? "–" : f.paced.p99Ms.toFixed(2) + over(f),
    f.cpuUsPerEvent.toFixed(0),
    f.natsCpuUsPerEvent.toFixed(0),
    f.peakRssMiB.toFixed(0),
    f.readyMs.toFixed(0),
  ];
  const table = (head: string[], rows: string[][], firstWidth: number): string[] => {
    const line = (cols: string[]) =>
      cols
        .map((c, i) =>
          i === 0 ? c.padEnd(firstWidth) : c.padStart(Math.max(10, (head[i] ?? "").length + 2)),
        )
        .join("");
    return [line(head), ...rows.map(line)];
  };
  const head = ["", "ev/s", "p50 ms", "p99 ms", "CPU µs/ev", "nats µs/ev", "peak RSS MiB", "ready ms"];
  const out: string[] = [
    `\nrouting, each process as shipped: ${String(figures.events)}-event backlog drained; latency over ${String(figures.latencyEvents)} events paced at half the forwarder's throughput`,
  ];
  for (const size of figures.byLinks) {
    out.push(
      "",
      ...table(
        [`${String(size.links)} links`, ...head.slice(1)],
        [size.forwarder, size.coreOtlp, size.coreNoEndpoint].map((f) => [f.name, ...cells(f)]),
        28,
      ),
      `  paced at ${(size.forwarder.paced?.perSecond ?? 0).toFixed(0)} ev/s`,
    );
  }
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  const ratioRows = figures.byLinks.flatMap((size) =>
    [size.coreOtlp, size.coreNoEndpoint].map((core) => [
      `${String(size.links)} links, ${core.name}`,
      `${((core.throughputPerSecond / size.forwarder.throughputPerSecond) * 100).toFixed(1)} %`,
      ratio(core.cpuUsPerEvent, size.forwarder.cpuUsPerEvent),
      core.paced === undefined || size.forwarder.paced === undefined
        ? "–"
        : ratio(core.paced.p99Ms, size.forwarder.paced.p99Ms),
    ]),
  );
  out.push(
    "",
    ...table(["core / forwarder", "throughput", "CPU per event", "p99"], ratioRows, 40),
    "  (targets: throughput ≥ 80 %, CPU per event ≤ 1.2x, p99 ≤ 1.3x at half load)",
  );
  if (figures.replicas !== undefined) {
    const { one, two, links } = figures.replicas;
    out.push(
      "",
      `replicas (${String(links)} links, OTLP endpoint; nats-server and the bench on either CPU):`,
      ...table(
        ["", "ev/s", "CPU µs/ev", "nats µs/ev", "peak RSS MiB", "ready ms"],
        [one, two].map((f) => {
          const [rate = "", , , cpu = "", natsCpu = "", rss = "", ready = ""] = cells(f);
          return [f.name, rate, cpu, natsCpu, rss, ready];
        }),
        32,
      ),
      `2 replicas / 1 replica throughput: ${ratio(two.throughputPerSecond, one.throughputPerSecond)}`,
    );
  }
  out.push(
    "",
    `OTLP receiver: ${String(figures.otlp.traces)} trace and ${String(figures.otlp.metrics)} metric exports, ${(figures.otlp.bytes / MiB).toFixed(1)} MiB`,
    "* paced above the process's own throughput: the latency is mostly the queue that builds up",
    "CPU µs/ev: user + system CPU of the process(es) over the drain, per event; nats µs/ev: nats-server's; ready: start to /readyz 200 (forwarder: consumer pulling; 2 replicas: partitions shared out)",
    `run time: ${figures.seconds.toFixed(0)} s`,
  );
  return out.join("\n");
}
