/**
 * Routing benchmark: the core with validation, policy, stores and audit, against a bare forwarder on the
 * same nats-server in the same run (consume the same inbound events, publish each to an outbound subject,
 * ack). Both are measured twice: draining a backlog (throughput) and under a steady paced load (latency).
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { stringify } from "yaml";
import type { Config, Link, NormalisedEvent } from "../schemas/types.js";
import { JetStreamBus } from "../gateway/bus/JetStreamBus.js";
import { streams } from "../gateway/bus/topology.js";
import { loadConfig } from "../gateway/config/loadConfig.js";
import { schemaDir } from "../gateway/contract/schemas.js";
import { PARTITIONS, subjects } from "../gateway/contract/subjects.js";
import { LocalNatsServer } from "../gateway/demo/LocalNatsServer.js";
import { GatewayService } from "../gateway/GatewayService.js";
import { createLogger } from "../gateway/log.js";
import { encodeJson } from "../gateway/stores/KeyValueStore.js";

export interface RunFigures {
  name: string;
  events: number;
  throughputPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

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

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
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
      const config: Config = {
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
  const started = performance.now();
  const stop = await processor.start();
  while ((await outboundCount(jsm)) < events) await new Promise((resolve) => setTimeout(resolve, 20));
  const seconds = (performance.now() - started) / 1000;
  await stop();
  return events / seconds;
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

export async function runRoutingBenchmark(options: {
  events: number;
  latencyEvents: number;
  perSecond: number;
}): Promise<RunFigures[]> {
  const nats = await LocalNatsServer.start();
  const dir = await mkdtemp(join(tmpdir(), "fedgate-bench-"));
  const nc = await connect({ servers: nats.url });
  const bus = await JetStreamBus.connect({ servers: nats.url, log });
  try {
    await bus.ensureTopology();
    const jsm = await jetstreamManager(nc);
    const figures: RunFigures[] = [];
    for (const processor of [forwarder(nc), core(nats.url, dir)]) {
      process.stderr.write(`bench: ${processor.name}: draining ${options.events} events…\n`);
      const rate = await throughput(bus, jsm, processor, options.events);
      process.stderr.write(
        `bench: ${processor.name}: ${options.latencyEvents} events at ${options.perSecond}/s for latency…\n`,
      );
      const { p50, p99 } = await latency(nc, bus, jsm, processor, options.latencyEvents, options.perSecond);
      figures.push({
        name: processor.name,
        events: options.events,
        throughputPerSecond: rate,
        p50Ms: p50,
        p99Ms: p99,
      });
    }
    return figures;
  } finally {
    await bus.close();
    await nc.close();
    await nats.stop();
  }
}
