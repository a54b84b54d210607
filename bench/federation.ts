/**
 * `npm run bench:federation`: ten gateways on 127.0.0.1 (g0…g9, one country each), each with its own
 * nats-server and its own core process, federated first hub-and-spoke, then as a full mesh. Per layout:
 * 1,000 shared conversations linked and consented, a paced load of native messages, and what it costs:
 * latency by hops, losses and doubles, memory per gateway, time to set up, and how fast a revocation bites.
 *
 * Settings (environment): BENCH_FED_RATE messages/s in total (50), BENCH_FED_SECONDS of load (20),
 * BENCH_FED_CONVERSATIONS (1000), BENCH_FED_SEED (1), BENCH_FED_LAYOUTS ("hub-and-spoke,full mesh").
 * The rate is 50, not 200: on two cores, ten federated gateways with 1,000 conversations keep about one and
 * a half cores busy before any message is sent (the table's idle rows say why), and 200/s would take minutes
 * to drain.
 */
import type { ConfigInput } from "../test/harness/configInput.js";
import type { ChildProcess } from "node:child_process";
import { generateKeyPairSync, type KeyObject, randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { Config, Delivery, NormalisedEvent, SignedPartnerManifest } from "../schemas/types.js";
import { AdapterRuntime } from "../bridges/kit/AdapterRuntime.js";
import { JetStreamBus } from "../gateway/platform/bus/JetStreamBus.js";
import type { Subscription } from "../gateway/platform/bus/Bus.js";
import { validateAuditBatch } from "../schemas/contract/schemas.js";
import { subjects } from "../schemas/contract/subjects.js";
import { LocalNatsServer } from "../test/harness/servers/LocalNatsServer.js";
import { freePorts } from "../test/harness/servers/serverProcess.js";
import { grantKeyText } from "../gateway/core/federation/consentGrant.js";
import { type Credentials, federationServerConfig } from "../gateway/core/federation/federationAccounts.js";
import { signManifest } from "../gateway/core/federation/partnerManifest.js";
import { createLogger } from "../gateway/platform/log.js";
import type { Consent } from "../gateway/core/federation/ConsentStore.js";
import { percentile } from "./measure.js";
import {
  cpuSecondsOf,
  natsPidOf,
  rssOf,
  spawnCore,
  stopProcess,
  tail,
  TICKS_PER_SECOND,
} from "./processes.js";
import {
  consentsToGive,
  type FederationPlan,
  type GatewayPlan,
  type LayoutName,
  type Leafnode,
  linksOf,
  manifestAgenciesOf,
  NATIVE,
  nativeEndpoint,
  natsPartnersOf,
  planFederation,
  policyOf,
  seededRandom,
  type SharedConversation,
} from "./federationTopology.js";

const GATEWAYS = 10;
const settings = {
  rate: Number(process.env["BENCH_FED_RATE"] ?? 50),
  seconds: Number(process.env["BENCH_FED_SECONDS"] ?? 20),
  conversations: Number(process.env["BENCH_FED_CONVERSATIONS"] ?? 1000),
  seed: Number(process.env["BENCH_FED_SEED"] ?? 1),
  layouts: (process.env["BENCH_FED_LAYOUTS"] ?? "hub-and-spoke,full mesh")
    .split(",")
    .map((l) => l.trim())
    .filter((l): l is LayoutName => l === "hub-and-spoke" || l === "full mesh"),
};
/** Approvals in flight at once over all admin APIs: enough to keep ten cores busy, not to swamp them. */
const CONSENT_CONCURRENCY = 16;
/** How long the run waits for the last messages before it counts the rest as lost. */
const DRAIN_QUIET_MS = 30_000;
/** How long a revocation may take to reach the partner before it is reported as not seen. */
const REVOCATION_TIMEOUT_MS = 120_000;
const MiB = 1024 * 1024;
/** A quiet stretch before the load: what ten federated gateways cost doing nothing. */
const IDLE_SECONDS = 5;

const log = createLogger("warn", "fedgate-bench");
const resultFile = fileURLToPath(new URL("federation.json", import.meta.url));

const runStart = performance.now();
const progress = (text: string): boolean =>
  process.stderr.write(
    `bench:federation [${((performance.now() - runStart) / 1000).toFixed(0).padStart(3)} s]: ${text}\n`,
  );
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number): string => (ms / 1000).toFixed(1);

type KeyPair = { privateKey: KeyObject; publicKey: KeyObject };

const pem = (key: KeyObject): string =>
  key.export({ type: key.type === "private" ? "pkcs8" : "spki", format: "pem" }).toString();

/**
 * Everything started, stopped in reverse order, each step even if an earlier one failed. Steps of one group
 * pushed one after the other (ten cores, ten servers) stop together: one by one, ten cores take a minute.
 */
class Teardown {
  private readonly steps: { group: string; what: string; run: () => Promise<void> }[] = [];

  push(group: string, what: string, run: () => Promise<void>): void {
    this.steps.push({ group, what, run });
  }

  async run(): Promise<void> {
    const steps = this.steps.splice(0).reverse();
    while (steps.length > 0) {
      const group = steps[0]?.group;
      const end = steps.findIndex((s) => s.group !== group);
      const together = steps.splice(0, end < 0 ? steps.length : end);
      await Promise.all(
        together.map(async (step) => {
          try {
            await step.run();
          } catch (error) {
            progress(
              `stopping ${step.what} failed: ${error instanceof Error ? error.message : String(error)}`,
            );
          }
        }),
      );
    }
  }
}

interface LatencyFigures {
  count: number;
  p50Ms: number;
  p99Ms: number;
}

interface RssFigures {
  medianMiB: number;
  maxMiB: number;
  maxAt: string;
}

interface RevocationFigures {
  conversation: string;
  path: string[];
  revokedBy: string;
  partner: string;
  /** DELETE /v1/consents/... on the revoking gateway, until it answered. */
  deleteMs: number;
  /** Until the partner's GET /v1/consents/... showed revoked. */
  partnerSeesRevokedMs: number;
  /** Until the first message sent after the DELETE answered was audited not-consented, and by whom. */
  firstMessageRefusedMs: number;
  firstMessageRefusedBy: string;
  /** Until the partner gateway itself refused a message (probes every 50 ms). */
  partnerRefusesMs: number;
  probesSent: number;
  /** Probes the revoking side's native room received: must be 0. */
  deliveredAfterRevocation: number;
  /** Denial notices the sender's native room received about the probes. */
  noticesToSender: number;
}

interface LayoutFigures {
  layout: LayoutName;
  leafnodes: number;
  conversations: { oneHop: number; twoHops: number };
  consentsGiven: number;
  setupMs: { serversAndCores: number; manifests: number; consents: number; total: number };
  sent: number;
  arrived: number;
  lost: number;
  doubled: number;
  sendFailures: number;
  offeredPerSecond: number;
  deliveredPerSecond: number;
  latency: { oneHop: LatencyFigures; twoHops: LatencyFigures };
  rss: {
    nats: RssFigures;
    core: RssFigures;
    perGateway: { id: string; natsMiB: number; coreMiB: number }[];
  };
  /** With nothing sent (IDLE_SECONDS), and over the load until the last message arrived. */
  cpu: { idle: CpuFigures; load: CpuFigures };
  /** Consent grants sent between gateways per second while idle, all gateways together. */
  idleGrantsPerSecond: number;
  revocation: RevocationFigures;
}

/** One message the run sent, and what became of it. */
interface SentMessage {
  sentAt: number;
  hops: number;
  to: string;
  arrivals: number;
  arrivedAt?: number;
}

interface RunningGateway {
  plan: GatewayPlan;
  nats: LocalNatsServer;
  natsPid: number;
  core: ChildProcess;
  coreLog: string;
  /** What the core connects with; the bench's adapters too, as the tests' do. */
  coreCredentials: Credentials;
  adminUrl: string;
  adminToken: string;
  /** Its manifest, as its partners are given it. */
  manifest: SignedPartnerManifest;
  bus?: JetStreamBus;
  runtime?: AdapterRuntime;
}

/** CPU time the whole machine was busy so far (every process, ours or not), in seconds. */
async function machineBusySeconds(): Promise<number> {
  const [, ...ticks] = ((await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "").trim().split(/\s+/);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks.map(Number);
  return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND;
}

/** Where CPU went over a stretch of time, in cores (CPU seconds per second). */
interface CpuFigures {
  natsServers: number;
  cores: number;
  bench: number;
  machine: number;
}

/** A reading of CPU times now; `since` turns two readings into CpuFigures. */
async function cpuReading(gateways: readonly RunningGateway[]) {
  const at = performance.now();
  const nats = await Promise.all(gateways.map((g) => cpuSecondsOf(g.natsPid)));
  const cores = await Promise.all(gateways.map((g) => cpuSecondsOf(g.core.pid ?? 0)));
  const { user, system } = process.cpuUsage();
  return {
    at,
    nats: nats.reduce((a, b) => a + b, 0),
    cores: cores.reduce((a, b) => a + b, 0),
    bench: (user + system) / 1e6,
    machine: await machineBusySeconds(),
  };
}

function cpuSince(
  before: Awaited<ReturnType<typeof cpuReading>>,
  after: Awaited<ReturnType<typeof cpuReading>>,
): CpuFigures {
  const elapsed = (after.at - before.at) / 1000;
  return {
    natsServers: (after.nats - before.nats) / elapsed,
    cores: (after.cores - before.cores) / elapsed,
    bench: (after.bench - before.bench) / elapsed,
    machine: (after.machine - before.machine) / elapsed,
  };
}

/** Median and maximum over the gateways, and which gateway has the maximum. */
function rssFigures(byGateway: { id: string; bytes: number }[]): RssFigures {
  const sorted = byGateway.map((g) => g.bytes).sort((a, b) => a - b);
  const max = byGateway.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const middle = sorted.length / 2;
  const median =
    sorted.length % 2 === 1
      ? (sorted[Math.floor(middle)] ?? 0)
      : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { medianMiB: median / MiB, maxMiB: max.bytes / MiB, maxAt: max.id };
}

function latencyFigures(samples: number[]): LatencyFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  return { count: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}

/** Calls a gateway's admin API; the status and the parsed body. */
async function admin(
  gateway: RunningGateway,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${gateway.adminUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${gateway.adminToken}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

async function adminOk(gateway: RunningGateway, method: string, path: string, body?: unknown) {
  const answer = await admin(gateway, method, path, body);
  if (answer.status !== 200)
    throw new Error(
      `${gateway.plan.id}: ${method} ${path} answered ${String(answer.status)}: ${JSON.stringify(answer.body)}`,
    );
  return answer.body;
}

/** Polls until `check` says true, or fails naming `what` after `timeoutMs`. */
async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 25,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${String(timeoutMs)} ms: ${what}`);
    await sleep(everyMs);
  }
}

/** `items` as the config schema's non-empty lists are typed; fails naming `what` when there are none. */
function nonEmpty<T>(items: T[], what: string): [T, ...T[]] {
  const [first, ...rest] = items;
  if (first === undefined) throw new Error(`${what}: none`);
  return [first, ...rest];
}

/** Runs `work` over `items`, `concurrency` at a time. */
async function inPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

function messageEvent(plan: FederationPlan, from: string, conversation: string, n: number): NormalisedEvent {
  const endpoint = nativeEndpoint(plan, from, conversation);
  const id = randomUUID();
  return {
    specVersion: "1",
    id,
    type: "message.created",
    source: { ...NATIVE, conversation: endpoint.conversation, messageId: `native-${id}` },
    sender: { userId: `officer-${String(n % 17)}@${endpoint.agency}`, displayName: "Duty officer" },
    content: { body: `Situation report ${String(n)}: vehicle sighted heading for the border crossing.` },
    timestamp: new Date().toISOString(),
  };
}

/** What the layout in progress has started: a signal stops it before the run exits. */
let inProgress: Teardown | undefined;
/** Set by a signal: the load stops sending. */
let interrupted = false;

/** One layout, from nothing to stopped: its figures. */
async function runLayout(layout: LayoutName): Promise<LayoutFigures> {
  const teardown = new Teardown();
  inProgress = teardown;
  const running: RunningGateway[] = [];
  try {
    return await measureLayout(planFederation(layout, GATEWAYS, settings.conversations, settings.seed), {
      teardown,
      running,
    });
  } catch (error) {
    for (const gateway of running)
      if (gateway.core.exitCode !== null || gateway.core.signalCode !== null)
        progress(`core ${gateway.plan.id} exited; its log:\n${await tail(gateway.coreLog)}`);
    throw error;
  } finally {
    progress(`${layout}: stopping`);
    await teardown.run();
  }
}

/** The gateways of one layout as they run, and how to stop them. */
interface Federation {
  teardown: Teardown;
  running: RunningGateway[];
}

function gatewayNamed(federation: Federation, id: string): RunningGateway {
  const found = federation.running.find((g) => g.plan.id === id);
  if (found === undefined) throw new Error(`no gateway ${id}`);
  return found;
}

/**
 * Starts every gateway of the plan: its nats-server with accounts and leafnodes, then its core as a process
 * of its own, with its policy, links and partners in its config; resolves once every core is ready.
 */
async function startGateways(plan: FederationPlan, { teardown, running }: Federation): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), `fedgate-bench-federation-`));
  teardown.push("files", "the scratch folder", () => rm(dir, { recursive: true, force: true }));
  const listeners = [...new Set(plan.leafnodes.map((l) => l.listener))];
  const ports = await freePorts(listeners.length + plan.gateways.length);
  const leafPorts = new Map(listeners.map((id, i) => [id, ports[i] as number]));
  const adminPorts = ports.slice(listeners.length);
  const leafCredentials = new Map<string, Credentials>(
    plan.leafnodes.map((l) => [
      `${l.listener} ${l.connector}`,
      { user: `${l.connector}-leaf`, password: randomBytes(12).toString("hex") },
    ]),
  );
  const credentialsOf = (l: Leafnode): Credentials => {
    const found = leafCredentials.get(`${l.listener} ${l.connector}`);
    if (found === undefined) throw new Error(`no credentials for ${l.connector} → ${l.listener}`);
    return found;
  };
  const authorities = new Map(plan.gateways.map((g) => [g.id, generateKeyPairSync("ed25519")]));
  const authorityOf = (id: string): KeyPair => {
    const found = authorities.get(id);
    if (found === undefined) throw new Error(`no authority for ${id}`);
    return found;
  };

  // nats-servers first, all at once: a remote retries until its listener is up.
  const servers = await Promise.all(
    plan.gateways.map(async (gateway) => {
      const core: Credentials = { user: "core", password: randomBytes(12).toString("hex") };
      const listen = leafPorts.get(gateway.id);
      const nats = await LocalNatsServer.start({
        config: federationServerConfig({
          self: gateway.id,
          gateway: core,
          partners: natsPartnersOf(plan, gateway.id, leafPorts, credentialsOf),
          ...(listen === undefined ? {} : { leafnodeListen: { host: "127.0.0.1", port: listen } }),
        }),
      });
      teardown.push("nats-servers", `nats-server ${gateway.id}`, () => nats.stop());
      return { gateway, nats, core };
    }),
  );

  for (const [i, { gateway, nats, core }] of servers.entries()) {
    const adminPort = adminPorts[i] as number;
    const adminToken = randomBytes(16).toString("hex");
    const grantKey = generateKeyPairSync("ed25519");
    const config: ConfigInput<Config> = {
      nats: { url: nats.url, user: core.user, password: { value: core.password } },
      gateway: { policy: policyOf(plan, gateway.id) },
      admin: { host: "127.0.0.1", port: adminPort, token: { value: adminToken } },
      log: { level: "warn" },
      links: linksOf(plan, gateway.id),
      federation: {
        authorities: nonEmpty(
          gateway.partners.map((p) => ({ value: pem(authorityOf(p).publicKey) })),
          `${gateway.id}'s partner authorities`,
        ),
        gateway: gateway.id,
        signingKey: { value: pem(grantKey.privateKey) },
        partners: gateway.partners,
      },
    };
    const configFile = join(dir, `${gateway.id}.yaml`);
    await writeFile(configFile, stringify(config), { mode: 0o600 });
    const coreLog = join(dir, `${gateway.id}-core.log`);
    const child = spawnCore(configFile, coreLog);
    teardown.push("cores", `core ${gateway.id}`, () => stopProcess(child));
    running.push({
      plan: gateway,
      nats,
      natsPid: await natsPidOf(nats.storeDir),
      core: child,
      coreLog,
      coreCredentials: core,
      adminUrl: `http://127.0.0.1:${String(adminPort)}`,
      adminToken,
      manifest: manifestOf(plan, gateway, authorityOf(gateway.id), grantKey, leafPorts.get(gateway.id)),
    });
  }
  await Promise.all(
    running.map((gateway) =>
      waitUntil(
        async () => {
          if (gateway.core.exitCode !== null || gateway.core.signalCode !== null)
            throw new Error(`core ${gateway.plan.id} exited while starting`);
          try {
            return (await fetch(`${gateway.adminUrl}/readyz`)).status === 200;
          } catch {
            return false;
          }
        },
        120_000,
        `core ${gateway.plan.id} to be ready`,
        100,
      ),
    ),
  );
}

/** A gateway's manifest, signed by its own authority: its grant key, and the agencies it speaks for. */
function manifestOf(
  plan: FederationPlan,
  gateway: GatewayPlan,
  authority: KeyPair,
  grantKey: KeyPair,
  leafPort: number | undefined,
): SignedPartnerManifest {
  const now = Date.now();
  return signManifest(
    {
      version: 1,
      gateway: {
        id: gateway.id,
        country: gateway.country,
        name: `Gateway ${gateway.id} (${gateway.country})`,
      },
      issuedAt: new Date(now - 60_000).toISOString(),
      expiresAt: new Date(now + 365 * 24 * 3600 * 1000).toISOString(),
      agencies: manifestAgenciesOf(plan, gateway.id),
      endpoints: { leafnode: `nats-leaf://127.0.0.1:${String(leafPort ?? 7422)}` },
      // Plain TCP on one host: the pins are never checked, but a manifest must name one.
      pins: { tlsPublicKeySha256: [randomBytes(32).toString("hex")] },
      grantKeys: [grantKeyText(grantKey.publicKey)],
    },
    authority.privateKey,
  );
}

/** Each gateway takes each partner's manifest through its admin API. */
async function exchangeManifests(federation: Federation): Promise<void> {
  await Promise.all(
    federation.running.flatMap((holder) =>
      holder.plan.partners.map((partner) =>
        adminOk(
          holder,
          "PUT",
          `/v1/partners/${partner}/manifest`,
          gatewayNamed(federation, partner).manifest,
        ),
      ),
    ),
  );
}

/**
 * Both sides of every leafnode pair each conversation crosses approve it; resolves, with the number of
 * approvals, once every gateway's GET /v1/consents shows each of its conversations active.
 */
async function consentEverything(plan: FederationPlan, federation: Federation): Promise<number> {
  const approvals = consentsToGive(plan);
  progress(`${plan.layout}: ${String(approvals.length)} consents to give`);
  await inPool(approvals, CONSENT_CONCURRENCY, async ({ gateway, partner, conversation }) => {
    await adminOk(gatewayNamed(federation, gateway), "PUT", `/v1/consents/${partner}/${conversation}`, {
      approvedBy: `duty officer ${gateway}`,
    });
  });
  const expected = new Map<string, Set<string>>();
  for (const { gateway, partner, conversation } of approvals) {
    const set = expected.get(gateway) ?? new Set<string>();
    set.add(`${partner} ${conversation}`);
    expected.set(gateway, set);
  }
  await Promise.all(
    federation.running.map((gateway) =>
      waitUntil(
        async () => {
          const { consents } = (await adminOk(gateway, "GET", "/v1/consents")) as { consents: Consent[] };
          const active = new Set(
            consents.filter((c) => c.state === "active").map((c) => `${c.partner} ${c.conversation}`),
          );
          return [...(expected.get(gateway.plan.id) ?? [])].every((key) => active.has(key));
        },
        180_000,
        `every consent of ${gateway.plan.id} to be active`,
        250,
      ),
    ),
  );
  return approvals.length;
}

/**
 * The synthetic native sides: one adapter per gateway, on its bus with the core's credentials, that sends
 * messages into its native rooms and records what arrives in them.
 */
class Traffic {
  readonly sent = new Map<string, SentMessage>();
  /** Denial notices each gateway's native side received. */
  readonly notices = new Map<string, number>();
  arrivedOnce = 0;
  lastArrival = 0;
  /** Messages that arrived at a gateway they were not sent to. */
  strays = 0;
  sendFailures = 0;
  private readonly publishing = new Set<Promise<void>>();

  private constructor(
    private readonly plan: FederationPlan,
    private readonly federation: Federation,
  ) {}

  static async open(plan: FederationPlan, federation: Federation): Promise<Traffic> {
    const traffic = new Traffic(plan, federation);
    await Promise.all(
      federation.running.map(async (gateway) => {
        const bus = await JetStreamBus.connect({
          servers: gateway.nats.url,
          ...gateway.coreCredentials,
          log,
          name: `bench-${gateway.plan.id}`,
        });
        gateway.bus = bus;
        federation.teardown.push("bench", `the bench's adapter at ${gateway.plan.id}`, async () => {
          await gateway.runtime?.close();
          await bus.close();
        });
        const runtime = await AdapterRuntime.open(bus, { ...NATIVE, log, ackWaitMs: 5000 });
        gateway.runtime = runtime;
        let counter = 0;
        await runtime.consumeDeliveries((delivery) => {
          traffic.arrive(gateway.plan.id, delivery);
          return Promise.resolve(`${gateway.plan.id}-${String(++counter)}`);
        });
      }),
    );
    return traffic;
  }

  private arrive(at: string, delivery: Delivery): void {
    const now = performance.now();
    if (delivery.event.type === "notice") {
      this.notices.set(at, (this.notices.get(at) ?? 0) + 1);
      return;
    }
    const message = this.sent.get(delivery.event.id);
    if (message === undefined || message.to !== at) {
      this.strays++;
      return;
    }
    message.arrivals++;
    if (message.arrivals === 1) {
      message.arrivedAt = now;
      this.arrivedOnce++;
      this.lastArrival = now;
    }
  }

  /** Sends message `n` from one end of `conversation` (the first, or with `reverse` the last); its id. */
  send(conversation: SharedConversation, reverse: boolean, n: number): string {
    const path = reverse ? [...conversation.path].reverse() : conversation.path;
    const from = path[0] as string;
    const event = messageEvent(this.plan, from, conversation.name, n);
    this.sent.set(event.id, {
      sentAt: performance.now(),
      hops: path.length - 1,
      to: path[path.length - 1] as string,
      arrivals: 0,
    });
    const runtime = gatewayNamed(this.federation, from).runtime;
    if (runtime === undefined) throw new Error(`no adapter at ${from}`);
    const publish = runtime
      .publish(event)
      .catch((error: unknown) => {
        // The first says why; the count says how often.
        if (this.sendFailures++ === 0)
          progress(`a message could not be sent: ${error instanceof Error ? error.message : String(error)}`);
      })
      .finally(() => this.publishing.delete(publish));
    this.publishing.add(publish);
    return event.id;
  }

  /** Resolves once every send so far has been published (or has failed). */
  async published(): Promise<void> {
    await Promise.all(this.publishing);
  }

  arrivals(id: string): number {
    return this.sent.get(id)?.arrivals ?? 0;
  }
}

/** Counts the consent grants the gateways send each other over `ms`, and the CPU they use meanwhile. */
async function idle(
  federation: Federation,
  ms: number,
): Promise<{ grantsPerSecond: number; cpu: CpuFigures }> {
  let grants = 0;
  const watches = federation.running.map((g) => {
    if (g.bus === undefined) throw new Error(`no connection to ${g.plan.id}`);
    return g.bus.listen(subjects.federationMessage(g.plan.id, "*", "grant"), () => {
      grants++;
      return Promise.resolve();
    });
  });
  try {
    const start = await cpuReading(federation.running);
    await sleep(ms);
    const end = await cpuReading(federation.running);
    return { grantsPerSecond: grants / ((end.at - start.at) / 1000), cpu: cpuSince(start, end) };
  } finally {
    await Promise.all(watches.map((w) => w.stop()));
  }
}

/** The paced load: each message from one end of a random conversation, at an even rate; then the drain. */
async function load(plan: FederationPlan, federation: Federation, traffic: Traffic) {
  const total = Math.round(settings.rate * settings.seconds);
  const random = seededRandom(settings.seed + 1);
  progress(
    `${plan.layout}: sending ${String(total)} messages at ${String(settings.rate)}/s for ${String(settings.seconds)} s`,
  );
  const cpuStart = await cpuReading(federation.running);
  const start = performance.now();
  for (let n = 0; n < total && !interrupted; n++) {
    const wait = start + (n * 1000) / settings.rate - performance.now();
    if (wait > 1) await sleep(wait);
    const conversation = plan.conversations[Math.floor(random() * plan.conversations.length)];
    if (conversation === undefined) throw new Error("no conversation");
    traffic.send(conversation, random() < 0.5, n);
  }
  await traffic.published();
  const sent = traffic.sent.size;
  let seen = -1;
  let quietSince = performance.now();
  while (
    traffic.arrivedOnce < sent - traffic.sendFailures &&
    performance.now() - quietSince < DRAIN_QUIET_MS
  ) {
    if (traffic.arrivedOnce !== seen) {
      seen = traffic.arrivedOnce;
      quietSince = performance.now();
    }
    await sleep(50);
  }
  const cpu = cpuSince(cpuStart, await cpuReading(federation.running));
  // Doubles would come after the first copy: give them a moment.
  await sleep(2000);
  const messages = [...traffic.sent.values()];
  const arrived = messages.filter((m) => m.arrivals > 0);
  const latencies = (hops: number): number[] =>
    arrived.filter((m) => m.hops === hops).map((m) => (m.arrivedAt ?? 0) - m.sentAt);
  progress(
    `${plan.layout}: ${String(arrived.length)}/${String(sent)} arrived, ${String(traffic.strays)} elsewhere`,
  );
  return {
    sent,
    arrived: arrived.length,
    lost: sent - arrived.length,
    doubled: messages.filter((m) => m.arrivals > 1).length,
    sendFailures: traffic.sendFailures,
    offeredPerSecond: settings.rate,
    deliveredPerSecond: arrived.length / ((traffic.lastArrival - start) / 1000),
    latency: { oneHop: latencyFigures(latencies(1)), twoHops: latencyFigures(latencies(2)) },
    cpu,
  };
}

/** VmRSS of every gateway's nats-server and core. */
async function memory(federation: Federation): Promise<LayoutFigures["rss"]> {
  const perGateway = await Promise.all(
    federation.running.map(async (g) => ({
      id: g.plan.id,
      nats: await rssOf(g.natsPid),
      core: await rssOf(g.core.pid ?? 0),
    })),
  );
  return {
    nats: rssFigures(perGateway.map((g) => ({ id: g.id, bytes: g.nats }))),
    core: rssFigures(perGateway.map((g) => ({ id: g.id, bytes: g.core }))),
    perGateway: perGateway.map((g) => ({ id: g.id, natsMiB: g.nats / MiB, coreMiB: g.core / MiB })),
  };
}

async function measureLayout(plan: FederationPlan, federation: Federation): Promise<LayoutFigures> {
  const { layout } = plan;
  const setupStart = performance.now();
  progress(
    `${layout}: ${String(plan.leafnodes.length)} leafnodes, ${String(plan.conversations.length)} conversations; starting ${String(GATEWAYS)} nats-servers and cores`,
  );
  await startGateways(plan, federation);
  const serversReady = performance.now();
  progress(`${layout}: servers and cores ready after ${seconds(serversReady - setupStart)} s`);
  await exchangeManifests(federation);
  const manifestsHeld = performance.now();
  const consentsGiven = await consentEverything(plan, federation);
  const setupEnd = performance.now();
  progress(`${layout}: every consent active; set up in ${seconds(setupEnd - setupStart)} s`);

  const traffic = await Traffic.open(plan, federation);
  const quiet = await idle(federation, IDLE_SECONDS * 1000);
  const { cpu, ...delivered } = await load(plan, federation, traffic);
  // Memory with everything set up and the load just through.
  const rss = await memory(federation);
  const revocation = await measureRevocation(plan, federation, traffic);

  const twoHops = plan.conversations.filter((c) => c.path.length === 3).length;
  return {
    layout,
    leafnodes: plan.leafnodes.length,
    conversations: { oneHop: plan.conversations.length - twoHops, twoHops },
    consentsGiven,
    setupMs: {
      serversAndCores: serversReady - setupStart,
      manifests: manifestsHeld - serversReady,
      consents: setupEnd - manifestsHeld,
      total: setupEnd - setupStart,
    },
    ...delivered,
    rss,
    cpu: { idle: quiet.cpu, load: cpu },
    idleGrantsPerSecond: quiet.grantsPerSecond,
    revocation,
  };
}

/**
 * Revokes one active conversation at its far end (the leg next to it: via the hub, the hub is the partner)
 * and times how long until the partner shows it revoked, until a message sent after it is refused, and until
 * the partner itself refuses one. Probes go from the near end meanwhile; none may arrive.
 */
async function measureRevocation(
  plan: FederationPlan,
  federation: Federation,
  traffic: Traffic,
): Promise<RevocationFigures> {
  const hops = plan.layout === "hub-and-spoke" ? 3 : 2;
  const conversation = plan.conversations.find((c) => c.path.length === hops);
  if (conversation === undefined) throw new Error(`no conversation over ${String(hops - 1)} hops to revoke`);
  const { path, name } = conversation;
  const sender = path[0] as string;
  const revoker = gatewayNamed(federation, path[path.length - 1] as string);
  const partner = gatewayNamed(federation, path[path.length - 2] as string);
  progress(
    `${plan.layout}: revoking ${name} (${path.join(" → ")}) at ${revoker.plan.id}, partner ${partner.plan.id}`,
  );

  // It flows before: one message through, so what follows measures the revocation and nothing else.
  const before = traffic.send(conversation, false, 0);
  await waitUntil(() => traffic.arrivals(before) > 0, 60_000, "a message before the revocation");

  const refusals: { gateway: string; eventId: string; at: number }[] = [];
  const follows: Subscription[] = [];
  for (const id of path) {
    const bus = gatewayNamed(federation, id).bus;
    if (bus === undefined) throw new Error(`no connection to ${id}`);
    follows.push(
      await bus.follow("FEDGATE_AUDIT", subjects.auditAll, "new", (m) => {
        const at = performance.now();
        for (const record of validateAuditBatch(JSON.parse(Buffer.from(m.data).toString("utf8"))).records)
          if (record.reason === "not-consented") refusals.push({ gateway: id, eventId: record.eventId, at });
      }),
    );
  }
  const noticesBefore = traffic.notices.get(sender) ?? 0;
  try {
    const revokedAt = performance.now();
    await adminOk(revoker, "DELETE", `/v1/consents/${partner.plan.id}/${name}`);
    const deleteMs = performance.now() - revokedAt;
    const probes: string[] = [];
    const refusedAt = (gateway?: string): { gateway: string; at: number } | undefined =>
      refusals.find((r) => probes.includes(r.eventId) && (gateway === undefined || r.gateway === gateway));
    let partnerSeesRevokedMs = Number.NaN;
    const watchPartner = (async () => {
      while (performance.now() - revokedAt < REVOCATION_TIMEOUT_MS) {
        const { body } = await admin(partner, "GET", `/v1/consents/${revoker.plan.id}/${name}`);
        if ((body as Consent | undefined)?.state === "revoked") {
          partnerSeesRevokedMs = performance.now() - revokedAt;
          return;
        }
        await sleep(10);
      }
    })();
    // Every 50 ms at first, then every 500 ms: fine-grained where a revocation should bite, few if it lags.
    const probing = (async () => {
      for (let n = 1; refusedAt(partner.plan.id) === undefined; n++) {
        if (performance.now() - revokedAt > REVOCATION_TIMEOUT_MS) return;
        probes.push(traffic.send(conversation, false, n));
        await sleep(n < 40 ? 50 : 500);
      }
    })();
    await Promise.all([watchPartner, probing]);
    const first = probes[0];
    await waitUntil(
      () => refusals.some((r) => r.eventId === first),
      30_000,
      "the first message after the revocation to be refused",
    );
    // Late copies, had any got through, would arrive within this.
    await sleep(2000);
    const firstRefusal = refusals.find((r) => r.eventId === first);
    const partnerRefusal = refusedAt(partner.plan.id);
    return {
      conversation: name,
      path,
      revokedBy: revoker.plan.id,
      partner: partner.plan.id,
      deleteMs,
      partnerSeesRevokedMs,
      firstMessageRefusedMs: (firstRefusal?.at ?? Number.NaN) - revokedAt,
      firstMessageRefusedBy: firstRefusal?.gateway ?? "",
      partnerRefusesMs: (partnerRefusal?.at ?? Number.NaN) - revokedAt,
      probesSent: probes.length,
      deliveredAfterRevocation: probes.filter((id) => traffic.arrivals(id) > 0).length,
      noticesToSender: (traffic.notices.get(sender) ?? 0) - noticesBefore,
    };
  } finally {
    await Promise.all(follows.map((f) => f.stop()));
  }
}

function report(figures: LayoutFigures[]): string {
  const fixed = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toFixed(digits) : "–");
  const cpuCell = (c: CpuFigures): string =>
    `${fixed(c.natsServers, 2)} / ${fixed(c.cores, 2)} / ${fixed(c.bench, 2)}`;
  const rows: [string, (f: LayoutFigures) => string][] = [
    ["leafnodes", (f) => String(f.leafnodes)],
    [
      "conversations 1 hop / 2 hops",
      (f) => `${String(f.conversations.oneHop)} / ${String(f.conversations.twoHops)}`,
    ],
    ["consents given (PUT, both sides)", (f) => String(f.consentsGiven)],
    ["setup: nats-servers + cores (s)", (f) => seconds(f.setupMs.serversAndCores)],
    ["setup: manifests (s)", (f) => seconds(f.setupMs.manifests)],
    ["setup: consents until active (s)", (f) => seconds(f.setupMs.consents)],
    ["setup: total (s)", (f) => seconds(f.setupMs.total)],
    ["messages sent", (f) => String(f.sent)],
    ["arrived / lost / doubled", (f) => `${String(f.arrived)} / ${String(f.lost)} / ${String(f.doubled)}`],
    ["send failures", (f) => String(f.sendFailures)],
    [
      "throughput offered / delivered (msg/s)",
      (f) => `${fixed(f.offeredPerSecond)} / ${fixed(f.deliveredPerSecond, 1)}`,
    ],
    ["1 hop: messages", (f) => String(f.latency.oneHop.count)],
    [
      "1 hop: p50 / p99 (ms)",
      (f) => `${fixed(f.latency.oneHop.p50Ms, 1)} / ${fixed(f.latency.oneHop.p99Ms, 1)}`,
    ],
    ["2 hops: messages", (f) => String(f.latency.twoHops.count)],
    [
      "2 hops: p50 / p99 (ms)",
      (f) => `${fixed(f.latency.twoHops.p50Ms, 1)} / ${fixed(f.latency.twoHops.p99Ms, 1)}`,
    ],
    [
      "RSS nats-server median / max (MiB)",
      (f) => `${fixed(f.rss.nats.medianMiB)} / ${fixed(f.rss.nats.maxMiB)} (${f.rss.nats.maxAt})`,
    ],
    [
      "RSS core median / max (MiB)",
      (f) => `${fixed(f.rss.core.medianMiB)} / ${fixed(f.rss.core.maxMiB)} (${f.rss.core.maxAt})`,
    ],
    ["idle: consent grants sent (/s)", (f) => fixed(f.idleGrantsPerSecond)],
    ["CPU idle: nats / cores / bench (cores)", (f) => cpuCell(f.cpu.idle)],
    [
      "CPU idle: whole machine (cores)",
      (f) => `${fixed(f.cpu.idle.machine, 2)} of ${String(availableParallelism())}`,
    ],
    ["CPU load: nats / cores / bench (cores)", (f) => cpuCell(f.cpu.load)],
    [
      "CPU load: whole machine (cores)",
      (f) => `${fixed(f.cpu.load.machine, 2)} of ${String(availableParallelism())}`,
    ],
    ["revoked: conversation (path)", (f) => `${f.revocation.conversation} (${f.revocation.path.join("→")})`],
    ["revoked at / partner", (f) => `${f.revocation.revokedBy} / ${f.revocation.partner}`],
    ["revocation: DELETE answered (ms)", (f) => fixed(f.revocation.deleteMs, 1)],
    ["revocation: partner GET revoked (ms)", (f) => fixed(f.revocation.partnerSeesRevokedMs, 1)],
    [
      "revocation: next message refused (ms)",
      (f) => `${fixed(f.revocation.firstMessageRefusedMs, 1)} (at ${f.revocation.firstMessageRefusedBy})`,
    ],
    ["revocation: partner refuses (ms)", (f) => fixed(f.revocation.partnerRefusesMs, 1)],
    [
      "revocation: probes sent / delivered",
      (f) => `${String(f.revocation.probesSent)} / ${String(f.revocation.deliveredAfterRevocation)}`,
    ],
  ];
  const labelWidth = Math.max(...rows.map(([label]) => label.length)) + 2;
  const cells = rows.map(([label, cell]) => [label, ...figures.map(cell)] as const);
  const columnWidth = Math.max(...cells.flatMap(([, ...values]) => values.map((v) => v.length)), 14) + 2;
  const line = (label: string, values: readonly string[]): string =>
    label.padEnd(labelWidth) + values.map((v) => v.padStart(columnWidth)).join("");
  return [
    line(
      "",
      figures.map((f) => f.layout),
    ),
    "-".repeat(labelWidth + columnWidth * figures.length),
    ...cells.map(([label, ...values]) => line(label, values)),
  ].join("\n");
}

// Servers and cores would die with us anyway (parent-death signal), but leave their folders behind.
const stopOnSignal = (signal: NodeJS.Signals): void => {
  progress(`${signal}: stopping what was started`);
  interrupted = true;
  void (inProgress?.run() ?? Promise.resolve()).finally(() => process.exit(130));
};
process.once("SIGINT", stopOnSignal);
process.once("SIGTERM", stopOnSignal);

const results: LayoutFigures[] = [];
try {
  for (const layout of settings.layouts) results.push(await runLayout(layout));
} catch (error) {
  progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
}
const runSeconds = (performance.now() - runStart) / 1000;
if (results.length > 0) {
  console.log(
    `\nfederation: ${String(GATEWAYS)} gateways (each its own nats-server and core process), ${String(settings.conversations)} conversations, ${String(settings.rate)} msg/s for ${String(settings.seconds)} s, seed ${String(settings.seed)}\n`,
  );
  console.log(report(results));
  console.log(
    `\nlatency: native send → arrival at the far native adapter; lost = sent − arrived; RSS after the load (VmRSS);` +
      `\nCPU in cores (CPU s per s; the whole machine counts other processes too); – : not within ${String(REVOCATION_TIMEOUT_MS / 1000)} s`,
  );
  console.log(`run time: ${runSeconds.toFixed(0)} s`);
  await writeFile(
    resultFile,
    `${JSON.stringify({ settings: { gateways: GATEWAYS, ...settings }, runSeconds, layouts: results }, null, 2)}\n`,
  );
  console.log(`figures: ${resultFile}`);
}
if (results.some((r) => r.lost > 0 || r.doubled > 0 || r.revocation.deliveredAfterRevocation > 0))
  process.exitCode = 1;
// Connections' timers may linger after close; the run is over.
process.exit();
