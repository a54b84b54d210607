/**
 * Routing benchmark: the core with validation, policy, stores and audit, against a bare forwarder on the
 * same nats-server in the same run (consume the same inbound events, publish each to an outbound subject,
 * ack). Both are measured twice: draining a backlog (throughput) and under a steady paced load (latency).
 */
import type { ConfigInput } from "../test/harness/configInput.js";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { stringify } from "yaml";
import type { Config, Link, NormalisedEvent } from "../schemas/types.js";
import { JetStreamBus } from "../gateway/platform/bus/JetStreamBus.js";
import { streams } from "../schemas/contract/topology.js";
import { loadConfig } from "../gateway/platform/config/loadConfig.js";
import { schemaDir } from "../schemas/contract/schemas.js";
import { PARTITIONS, subjects } from "../schemas/contract/subjects.js";
import { LocalNatsServer } from "../test/harness/servers/LocalNatsServer.js";
import { GatewayService } from "../gateway/core/GatewayService.js";
import { createLogger } from "../gateway/platform/log.js";
import { encodeJson } from "../gateway/platform/bus/KeyValueStore.js";
import { percentile, type RunFigures } from "./measure.js";

const CONVERSATIONS = 64;
const log = createLogger("warn", "fedgate-bench");

const links: Link[] = Array.from({ length: CONVERSATIONS }, (_, i) => ({
  id: `bench-${i}`,
  endpoints: [
    {
      network: "xmpp",
      instance: "bpol",
      conversation: `bench-${i}@conference.bpol.localhost`,
      agency: "bpol",
    },
    { network: "stashcat", instance: "ni", conversation: `channel:${i}`, agency: "polizei-ni" },
  ],
}));

function event(n: number): NormalisedEvent {
  const endpoint = links[n % CONVERSATIONS]?.endpoints[0];
  if (endpoint === undefined) throw new Error("no endpoint");
  return {
    specVersion: "1",
    id: `bench-${n.toString().padStart(8, "0")}-${Date.now()}`,
    type: "message.created",
    source: {
      network: endpoint.network,
      instance: endpoint.instance,
      conversation: endpoint.conversation,
      messageId: `m${n}`,
    },
    sender: { userId: `officer${n % 17}@bpol.localhost`, displayName: "Kommissarin Weber" },
    content: {
      body: `Lagemeldung ${n}: Fahrzeug gesichtet, Richtung Grenzübergang, bitte Rückmeldung an die Leitstelle.`,
    },
    timestamp: new Date().toISOString(),
  };
}

async function resetStreams(jsm: JetStreamManager): Promise<void> {
  for (const spec of streams) {
    await jsm.streams.purge(spec.name);
    for await (const consumer of jsm.consumers.list(spec.name))
      await jsm.consumers.delete(spec.name, consumer.name);
  }
}

/** A processor under test: started against a purged bus, stopped afterwards. */
interface Processor {
  name: string;
  start(): Promise<() => Promise<void>>;
}

/** The bare forwarder: same inbound events, publish each to an outbound subject, ack. Same 16-way concurrency as the core. */
function forwarder(nc: NatsConnection): Processor {
  return {
    name: "bare forwarder",
    async start() {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      await jsm.consumers.add("FEDGATE_INBOUND", {
        durable_name: "forwarder",
        ack_policy: AckPolicy.Explicit,
        max_ack_pending: PARTITIONS,
      });
      const messages = await (
        await js.consumers.get("FEDGATE_INBOUND", "forwarder")
      ).consume({ max_messages: PARTITIONS });
      const loop = (async () => {
        for await (const m of messages) {
          void js
            .publish(subjects.outbound("stashcat", "ni"), m.data, { msgID: `fwd-${m.seq}` })
            .then(() => m.ack());
        }
      })();
      return async () => {
        await messages.close();
        await loop;
      };
    },
  };
}

function core(natsUrl: string, dir: string): Processor {
  return {
    name: "fedgate core (policy on)",
    async start() {
      const config: ConfigInput<Config> = {
        nats: { url: natsUrl },
        gateway: { policyFile: join(schemaDir, "examples", "policy.yaml") },
        log: { level: "warn" },
        links,
      };
      const file = join(dir, "bench-config.yaml");
      await writeFile(file, stringify(config));
      const gateway = await GatewayService.start(await loadConfig(file, {}), log);
      return () => gateway.stop();
    },
  };
}

async function outboundCount(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.info("FEDGATE_OUTBOUND")).state.messages;
}

/** Publishes a backlog first, then times how fast the processor turns it into outbound messages. */
async function throughput(
  bus: JetStreamBus,
  jsm: JetStreamManager,
  processor: Processor,
  events: number,
): Promise<number> {
  await resetStreams(jsm);
  const pending: Promise<unknown>[] = [];
  for (let n = 0; n < events; n++) {
    const e = event(n);
    pending.push(bus.publish(subjects.inbound(e.source), encodeJson(e), { msgId: e.id }));
    if (pending.length >= 256) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const stop = await processor.start();
  // Timed from the first outbound message, so start-up (the core's leases and consumers) is not counted.
  let first = 0;
  while ((first = await outboundCount(jsm)) === 0) await new Promise((resolve) => setImmediate(resolve));
  const started = performance.now();
  let done = first;
  while ((done = await outboundCount(jsm)) < events) await new Promise((resolve) => setTimeout(resolve, 10));
  const seconds = (performance.now() - started) / 1000;
  await stop();
  return (done - first) / seconds;
}

/** Paced load: each event's time from publish to its outbound message being seen. */
async function latency(
  nc: NatsConnection,
  bus: JetStreamBus,
  jsm: JetStreamManager,
  processor: Processor,
  events: number,
  perSecond: number,
): Promise<{ p50: number; p99: number }> {
  await resetStreams(jsm);
  const stop = await processor.start();
  const sentAt = new Map<number, number>();
  const samples: number[] = [];
  // Both processors forward the event unchanged (core wraps it in a delivery); find its number in the body.
  const sub = nc.subscribe(subjects.outboundAll, {
    callback: (_err, msg) => {
      const match = /Lagemeldung (\d+):/.exec(msg.string());
      const n = match === null ? undefined : Number(match[1]);
      const at = n === undefined ? undefined : sentAt.get(n);
      if (n !== undefined && at !== undefined) {
        samples.push(performance.now() - at);
        sentAt.delete(n);
      }
    },
  });
  const interval = 1000 / perSecond;
  const begin = performance.now();
  for (let n = 0; n < events; n++) {
    const due = begin + n * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const e = event(n);
    sentAt.set(n, performance.now());
    void bus.publish(subjects.inbound(e.source), encodeJson(e), { msgId: e.id });
  }
  const deadline = performance.now() + 30_000;
  while (samples.length < events && performance.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  sub.unsubscribe();
  await stop();
  if (samples.length < events)
    throw new Error(`${processor.name}: only ${samples.length}/${events} events arrived`);
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * Rounds alternate forwarder and core, so a noisy neighbour slows both alike; each figure is the median
 * over the rounds.
 */
export async function runRoutingBenchmark(options: {
  events: number;
  latencyEvents: number;
  perSecond: number;
  rounds: number;
}): Promise<RunFigures[]> {
  const nats = await LocalNatsServer.start();
  const dir = await mkdtemp(join(tmpdir(), "fedgate-bench-"));
  // The forwarder connects with the same options as fedgate does.
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const bus = await JetStreamBus.connect({ servers: nats.url, log });
  try {
    await bus.ensureTopology();
    const jsm = await jetstreamManager(nc);
    const processors = [forwarder(nc), core(nats.url, dir)];
    const samples = processors.map(() => ({
      rate: [] as number[],
      p50: [] as number[],
      p99: [] as number[],
    }));
    for (let round = 1; round <= options.rounds; round++) {
      for (const [i, processor] of processors.entries()) {
        process.stderr.write(`bench: round ${round}/${options.rounds}: ${processor.name}\n`);
        const rate = await throughput(bus, jsm, processor, options.events);
        const { p50, p99 } = await latency(nc, bus, jsm, processor, options.latencyEvents, options.perSecond);
        samples[i]?.rate.push(rate);
        samples[i]?.p50.push(p50);
        samples[i]?.p99.push(p99);
      }
    }
    return processors.map((processor, i) => ({
      name: processor.name,
      events: options.events,
      throughputPerSecond: median(samples[i]?.rate ?? []),
      p50Ms: median(samples[i]?.p50 ?? []),
      p99Ms: median(samples[i]?.p99 ?? []),
    }));
  } finally {
    await bus.close();
    await nc.close();
    await nats.stop();
  }
}
