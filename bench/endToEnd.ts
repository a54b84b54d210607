/**
 * End-to-end benchmark: a native client's message through its server, its bridge, the core, another bridge
 * and that bridge's server to a native client on another network, for every ordered pair of networks, next
 * to client-to-client delivery through each server, in one run.
 *
 * One nats-server, Prosody, Synapse and the Stashcat-compatible server (in this process) on 127.0.0.1; the
 * core and the three bridges as they ship, each a `fedgate` process of its own, from one config file that
 * links one conversation across the three networks: an XMPP room, a Matrix room and the Stashcat channel
 * "Einsatz", each with a sending and a reading client in it. The link carries every message to every network,
 * so one run per sending network measures, under the very same load, its server's client-to-client delivery
 * and both pairs from it: the burst as fast as the sender sends (as many in flight as its bridge's own
 * benchmark), then the paced run. Messages are told apart by the number in their body, whatever a bridge
 * adds around it.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { Config, Link } from "../schemas/types.js";
import { schemaDir } from "../schemas/contract/schemas.js";
import { createLogger } from "../gateway/platform/log.js";
import type { ConfigInput } from "../test/harness/configInput.js";
import { StashcatServer } from "../test/harness/servers/stashcat/StashcatServer.js";
import { LocalProsody } from "../test/harness/servers/xmpp/LocalProsody.js";
import { tchapRoom, weberXmppRoom } from "../test/helpers/matrixScenes.js";
import { stopClient, type XmppClient } from "../test/helpers/prosody.js";
import {
  einsatz,
  MEYER,
  Officer,
  SCHULZ,
  seedUser,
  stashcatBridgeConfigFor,
  stashcatTarget,
} from "../test/helpers/stashcatScenes.js";
import { type Cleanups, undo } from "./cleanups.js";
import { benchMatrixScene, IN_FLIGHT, officialsInRoom } from "./matrix.js";
import { measureEach, type RunFigures } from "./measure.js";
import {
  cpuSecondsOf,
  descendantPids,
  killAllStarted,
  type Launched,
  natsPidOf,
  spawnBridge,
  spawnCore,
  stopProcess,
  waitUntil,
} from "./processes.js";
import { followChat, STASHCAT_IN_FLIGHT } from "./stashcat.js";
import { joinedClient, onBody, sayInRoom } from "./xmpp.js";

const log = createLogger("warn", "fedgate-bench");
const START_TIMEOUT_MS = 120_000;

// Whatever ends the bench, no process it started outlives it.
process.on("exit", killAllStarted);

type Network = "xmpp" | "matrix" | "stashcat";

/** One network's end of the linked conversation. */
interface Side {
  network: Network;
  title: string;
  /** Its server, as the client-to-client row names it. */
  server: string;
  send: (text: string) => Promise<void>;
  /** Sends in flight at once, as its bridge's own benchmark sends. */
  inFlight: number;
  /** Told the body of each message the reading client receives. */
  heard: Set<(body: string) => void>;
}

/** What one sending network's run measured. */
export interface SourceFigures {
  source: string;
  /** Client to client through the source's server. */
  native: RunFigures;
  /** To each other network's reading client, with that network's title. */
  pairs: { target: string; figures: RunFigures }[];
  /**
   * Per process, its CPU over the burst (until the last message reached the slowest client): per message
   * sent, and in % of one CPU.
   */
  burstCpu: { name: string; msPerMessage: number; percent: number }[];
}

export interface EndToEndFigures {
  events: number;
  perSecond: number;
  runs: SourceFigures[];
  setupSeconds: number;
  seconds: number;
}

/** A message's text as measureEach wrote it (`<network> burst|paced <n>`), wherever it is in the body. */
const SENT_TEXT = /\b(?:xmpp|matrix|stashcat) (?:burst|paced) \d+\b/;

function progress(message: string): void {
  process.stderr.write(`bench: end to end: ${message}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `file` holds `text`; fails when a process of `launched` exits first. */
function logSays(launched: Launched, file: string, text: string, what: string): Promise<void> {
  return waitUntil(
    launched,
    what,
    async () => (await readFile(file, "utf8").catch(() => "")).includes(text),
    START_TIMEOUT_MS,
    50,
  );
}

/** The processes measured for CPU: fedgate's, the servers', and this one (the clients, the Stashcat server). */
interface Measured {
  name: string;
  cpuSeconds: () => Promise<number>;
}

/**
 * Starts the servers, the clients, the core and the bridges; each one's undoing is added to `cleanups`.
 * Resolves with each network's side and what to measure CPU of.
 */
async function startScene(dir: string, cleanups: Cleanups): Promise<{ sides: Side[]; measured: Measured[] }> {
  progress("starting nats-server, Synapse, Prosody and the Stashcat-compatible server");
  const matrix = await benchMatrixScene("end-to-end benchmark", cleanups);
  const prosody = await LocalProsody.start();
  cleanups.push(() => prosody.stop());
  const stashcat = await StashcatServer.start();
  cleanups.push(() => stashcat.stop());

  const heard: Record<Network, Set<(body: string) => void>> = {
    xmpp: new Set(),
    matrix: new Set(),
    stashcat: new Set(),
  };
  const tell = (network: Network) => (body: string) => {
    for (const listener of heard[network]) listener(body);
  };

  // The clients join before the bridges start, which then find their rooms occupied and linked.
  const room = `bench@${prosody.mucDomain}`;
  const clients: XmppClient[] = [];
  cleanups.push(() => Promise.all(clients.map(stopClient)));
  const xmppSender = await joinedClient(prosody, room, "sender", clients);
  onBody(await joinedClient(prosody, room, "reader", clients), tell("xmpp"));
  const officials = await officialsInRoom(matrix, cleanups);
  const following = await officials.receiver.follow(officials.room, tell("matrix"));
  cleanups.push(() => following.stop());
  const meyer = await Officer.loginTo(stashcat.apiUrl, seedUser(stashcat.seed, MEYER), log);
  const push = await followChat(stashcat, SCHULZ, einsatz, tell("stashcat"));
  cleanups.push(() => push.stop());

  const link: Link = {
    id: "bench-e2e",
    endpoints: [{ ...weberXmppRoom, conversation: room }, tchapRoom(officials.room), stashcatTarget()],
  };
  const stashcatBridge = await stashcatBridgeConfigFor(stashcat);
  const anyPort = { host: "127.0.0.1", port: 0 };
  const config: ConfigInput<Config> = {
    nats: { url: matrix.nats.url },
    gateway: { policyFile: join(schemaDir, "examples", "policy.yaml") },
    links: [link],
    // Each bridge's probes on a free port of its own: they share one host.
    bridges: {
      xmpp: { ...prosody.bridgeConfig("bpol"), status: anyPort },
      matrix: { ...matrix.config, status: anyPort },
      stashcat: {
        ...stashcatBridge.config,
        encryptionPassword: { value: stashcatBridge.encryptionPassword },
        status: anyPort,
      },
    },
  };
  const configFile = join(dir, "config.yaml");
  await writeFile(configFile, stringify(config), { mode: 0o600 });

  progress("starting the core and the bridges, each a fedgate process");
  const launched: Launched = { children: [], logs: [] };
  const launch = (name: string, start: (logFile: string) => ChildProcess): ChildProcess => {
    const logFile = join(dir, `${name}.log`);
    const child = start(logFile);
    launched.children.push(child);
    launched.logs.push(logFile);
    cleanups.push(() => stopProcess(child));
    return child;
  };
  const core = launch("core", (logFile) => spawnCore(configFile, logFile));
  // The core creates the declared link; bridges started after it find the link there.
  await logSays(launched, join(dir, "core.log"), "gateway consuming inbound events", "the core");
  const networks: Network[] = ["xmpp", "matrix", "stashcat"];
  const bridges = networks.map((network) =>
    launch(`${network}-bridge`, (logFile) => spawnBridge(network, configFile, logFile)),
  );
  await Promise.all(
    networks.map((network) =>
      logSays(launched, join(dir, `${network}-bridge.log`), "bridge started", `the ${network} bridge`),
    ),
  );

  const sides: Side[] = [
    {
      network: "xmpp",
      title: "XMPP",
      server: "Prosody",
      send: (text) => sayInRoom(xmppSender, room, text),
      inFlight: 1,
      heard: heard.xmpp,
    },
    {
      network: "matrix",
      title: "Matrix",
      server: "Synapse",
      send: async (text) => {
        await officials.sender.say(officials.room, text);
      },
      inFlight: IN_FLIGHT,
      heard: heard.matrix,
    },
    {
      network: "stashcat",
      title: "Stashcat",
      server: "the Stashcat server",
      send: async (text) => {
        await meyer.say(einsatz, text);
      },
      inFlight: STASHCAT_IN_FLIGHT,
      heard: heard.stashcat,
    },
  ];

  const ofPids = (pids: number[]) => async () =>
    (await Promise.all(pids.map((pid) => cpuSecondsOf(pid).catch(() => 0)))).reduce((a, b) => a + b, 0);
  const [prosodyPids, synapsePids] = await Promise.all([
    descendantPids((args) => args.some((a) => /(^|\/)prosody$/.test(a))),
    descendantPids((args) => args.some((a) => a.includes("synapse.app.homeserver"))),
  ]);
  const measured: Measured[] = [
    { name: "core", cpuSeconds: ofPids([core.pid ?? 0]) },
    ...sides.map((side, i) => ({ name: `${side.title} bridge`, cpuSeconds: ofPids([bridges[i]?.pid ?? 0]) })),
    { name: "nats-server", cpuSeconds: ofPids([await natsPidOf(matrix.nats.storeDir)]) },
    { name: "Prosody", cpuSeconds: ofPids(prosodyPids) },
    { name: "Synapse", cpuSeconds: ofPids(synapsePids) },
    {
      name: "bench (clients, Stashcat server)",
      cpuSeconds: () => {
        const { user, system } = process.cpuUsage();
        return Promise.resolve((user + system) / 1e6);
      },
    },
  ];
  return { sides, measured };
}

/**
 * Each sender writes until its message has reached every reading client: the bridges' bots have joined,
 * and nothing measured pays for a first time (a ghost or puppet made, a chat key fetched).
 */
async function warmUp(sides: Side[]): Promise<void> {
  for (const source of sides) {
    const marker = `warm-up from ${source.network}`;
    const reached = new Set<Network>();
    const listeners = sides.map((side) => {
      const listener = (body: string): void => {
        if (body.includes(marker)) reached.add(side.network);
      };
      side.heard.add(listener);
      return [side, listener] as const;
    });
    try {
      const deadline = performance.now() + START_TIMEOUT_MS;
      for (let n = 0; reached.size < sides.length; n++) {
        if (performance.now() > deadline)
          throw new Error(
            `the warm-up from ${source.title} did not reach ${sides
              .filter((s) => !reached.has(s.network))
              .map((s) => s.title)
              .join(", ")}`,
          );
        await source.send(`${marker} ${n}`);
        const wait = performance.now() + 5000;
        while (reached.size < sides.length && performance.now() < wait) await sleep(20);
      }
    } finally {
      for (const [side, listener] of listeners) side.heard.delete(listener);
    }
  }
}

export async function runEndToEndBenchmark(options: {
  events: number;
  perSecond: number;
}): Promise<EndToEndFigures> {
  const runStart = performance.now();
  const dir = await mkdtemp(join(tmpdir(), "fedgate-bench-e2e-"));
  const cleanups: Cleanups = [() => rm(dir, { recursive: true, force: true })];
  const stopOnSignal = (): void => {
    killAllStarted();
    void undo(cleanups, "end-to-end").finally(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  // Set where the run gets that far; read only once it got through.
  let setupSeconds = 0;
  let runs: SourceFigures[] = [];
  try {
    const { sides, measured } = await startScene(dir, cleanups);
    progress("warming up every path");
    await warmUp(sides);
    setupSeconds = (performance.now() - runStart) / 1000;
    runs = await measureRuns(sides, measured, options);
  } finally {
    process.off("SIGINT", stopOnSignal);
    process.off("SIGTERM", stopOnSignal);
    await undo(cleanups, "end-to-end");
  }
  // Stopping everything is part of what the section costs.
  return { ...options, runs, setupSeconds, seconds: (performance.now() - runStart) / 1000 };
}

/**
 * One run per sending network: measured at every reading client, its own network's as client to client, and
 * each process's CPU over the burst.
 */
async function measureRuns(
  sides: Side[],
  measured: Measured[],
  options: { events: number; perSecond: number },
): Promise<SourceFigures[]> {
  const runs: SourceFigures[] = [];
  for (const source of sides) {
    progress(`${String(options.events)} messages from ${source.title}, then ${String(options.events)} paced`);
    const points = sides.map((target) => ({
      name:
        target === source
          ? `${source.title} client to client (${source.server})`
          : `${source.title} → ${target.title}`,
      onArrival: (listener: (text: string) => void) =>
        target.heard.add((body) => {
          const text = SENT_TEXT.exec(body)?.[0];
          if (text !== undefined) listener(text);
        }),
    }));
    const cpuAt = () => Promise.all(measured.map((m) => m.cpuSeconds()));
    const before = await cpuAt();
    const burstStart = performance.now();
    let burstCpu: SourceFigures["burstCpu"] = [];
    const figures = await measureEach(
      source.network,
      source.send,
      options.events,
      options.perSecond,
      points,
      {
        inFlight: source.inFlight,
        afterBurst: async () => {
          const seconds = (performance.now() - burstStart) / 1000;
          const after = await cpuAt();
          burstCpu = measured.map((m, i) => {
            const cpu = (after[i] ?? 0) - (before[i] ?? 0);
            return {
              name: m.name,
              msPerMessage: (cpu * 1000) / options.events,
              percent: (cpu / seconds) * 100,
            };
          });
        },
      },
    );
    const native = figures[sides.indexOf(source)];
    if (native === undefined) throw new Error(`no client-to-client figures from ${source.title}`);
    runs.push({
      source: source.title,
      native,
      pairs: sides.flatMap((target, i) => {
        const pair = figures[i];
        return target === source || pair === undefined ? [] : [{ target: target.title, figures: pair }];
      }),
      burstCpu,
    });
  }
  return runs;
}

/** The section `npm run bench` prints: every pair next to client-to-client delivery, and where CPU went. */
export function endToEndReport(f: EndToEndFigures): string {
  const nativeOf = new Map(f.runs.map((run) => [run.source, run.native]));
  // Paced above what the path carries, latency is mostly the queue that builds up: marked with *.
  const over = (figures: RunFigures): string => (f.perSecond > figures.throughputPerSecond ? "*" : "");
  const row = (figures: RunFigures, ratio: string): string =>
    [
      figures.name.padEnd(48),
      figures.throughputPerSecond.toFixed(1).padStart(9),
      (figures.p50Ms.toFixed(1) + over(figures)).padStart(10),
      (figures.p99Ms.toFixed(1) + over(figures)).padStart(10),
      ratio.padStart(16),
    ].join("");
  const out = [
    `\nend to end: one conversation linked across XMPP, Matrix and Stashcat; core and bridges each a fedgate process (${String(f.events)} messages sent as fast as each client sends, then ${String(f.events)} at ${String(f.perSecond)}/s)`,
    `${"".padEnd(48)}${"msg/s".padStart(9)}${"p50 ms".padStart(10)}${"p99 ms".padStart(10)}${"/ slower native".padStart(16)}`,
    ...f.runs.map((run) => row(run.native, "")),
    ...f.runs.flatMap((run) =>
      run.pairs.map(({ target, figures }) => {
        const slower = Math.min(
          run.native.throughputPerSecond,
          nativeOf.get(target)?.throughputPerSecond ?? Number.NaN,
        );
        return row(figures, `${((figures.throughputPerSecond / slower) * 100).toFixed(1)} %`);
      }),
    ),
    "",
    "CPU per message sent in each burst, ms (and % of one CPU over the burst):",
    ...f.runs.map(
      (run) =>
        `  from ${run.source.padEnd(9)} ${run.burstCpu
          .map((c) => `${c.name} ${c.msPerMessage.toFixed(1)} (${c.percent.toFixed(0)} %)`)
          .join(", ")}`,
    ),
    "msg/s: the burst's messages over the time until the last reached that client; p50/p99 from send to receipt over the paced run",
    "* paced above what the path carried in the burst: the latency is mostly the queue that builds up",
    "/ slower native: the pair's throughput over the slower of its two networks' client-to-client throughputs",
    `section run time ${f.seconds.toFixed(0)} s (set-up and warm-up ${f.setupSeconds.toFixed(0)} s, stopping included)`,
  ];
  return out.join("\n");
}

/** The section, its sizes from BENCH_E2E_EVENTS and BENCH_E2E_RATE; BENCH_E2E_EVENTS=0 skips it. */
export async function endToEndSection(): Promise<void> {
  const events = Number(process.env["BENCH_E2E_EVENTS"] ?? 200);
  // Below what Synapse takes in on two shared CPUs (about 20/s), so that latency is not a queue's.
  const perSecond = Number(process.env["BENCH_E2E_RATE"] ?? 10);
  if (events <= 0) return;
  console.log(endToEndReport(await runEndToEndBenchmark({ events, perSecond })));
}

// `npm run bench:e2e`: this section alone.
if (process.argv[1] === fileURLToPath(import.meta.url)) await endToEndSection();
