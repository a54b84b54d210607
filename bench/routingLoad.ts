/**
 * The load the routing benchmark puts on the bus: links in the store, events spread over them, a backlog
 * published at once or a paced stream timed to its outbound messages, and the reset between runs.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Link, NormalisedEvent } from "../schemas/types.js";
import type { JetStreamBus } from "../gateway/platform/bus/JetStreamBus.js";
import { buckets, streams } from "../schemas/contract/topology.js";
import { subjects } from "../schemas/contract/subjects.js";
import { encodeJson } from "../gateway/platform/bus/KeyValueStore.js";
import { LinkStore } from "../gateway/platform/stores/LinkStore.js";
import { percentile } from "./measure.js";

/** What the forwarder process prints once its consumer pulls. */
export const FORWARDER_READY = "FORWARDER_READY";

/** Link `i`: an XMPP room of the federal police linked to a Stashcat channel of Lower Saxony's police. */
export function benchLink(i: number): Link {
  return {
    id: `bench-${String(i)}`,
    endpoints: [
      {
        network: "xmpp",
        instance: "bpol",
        conversation: `bench-${String(i)}@conference.bpol.localhost`,
        agency: "bpol",
      },
      { network: "stashcat", instance: "ni", conversation: `channel:${String(i)}`, agency: "polizei-ni" },
    ],
  };
}

/** Event `n` of a run over `links` links: from the XMPP side of link n mod links, so each link gets its share. */
export function benchEvent(n: number, links: number): NormalisedEvent {
  const [endpoint] = benchLink(n % links).endpoints;
  return {
    specVersion: "1",
    id: `bench-${n.toString().padStart(8, "0")}-${String(Date.now())}`,
    type: "message.created",
    source: {
      network: endpoint.network,
      instance: endpoint.instance,
      conversation: endpoint.conversation,
      messageId: `m${String(n)}`,
    },
    sender: { userId: `officer${String(n % 17)}@bpol.localhost`, displayName: "Kommissarin Weber" },
    content: {
      body: `Lagemeldung ${String(n)}: Fahrzeug gesichtet, Richtung Grenzübergang, bitte Rückmeldung an die Leitstelle.`,
    },
    timestamp: new Date().toISOString(),
  };
}

/** Runs `work` over 0…count-1, `concurrency` at a time. */
async function inPool(from: number, to: number, concurrency: number, work: (i: number) => Promise<void>) {
  let next = from;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < to) await work(next++);
    }),
  );
}

/**
 * Stores links until the store holds `count` of them (bench-0 … bench-<count-1>), as the admin API would
 * create them: sizes are run in ascending order, so each adds only what the last one lacked.
 */
export async function seedLinks(bus: JetStreamBus, have: number, count: number): Promise<void> {
  const store = new LinkStore(await bus.keyValue(buckets.links));
  await inPool(have, count, 64, async (i) => {
    await store.create(benchLink(i));
  });
}

/**
 * Empties the streams and removes their consumers, and forgets leases and delivery records: each run starts
 * on the same empty bus, with only the links kept.
 */
export async function resetBus(jsm: JetStreamManager): Promise<void> {
  for (const spec of streams) {
    await jsm.streams.purge(spec.name);
    for await (const consumer of jsm.consumers.list(spec.name))
      await jsm.consumers.delete(spec.name, consumer.name);
  }
  for (const bucket of [buckets.leases, buckets.deliveries]) {
    try {
      await jsm.streams.purge(`KV_${bucket}`);
    } catch {
      // Not made yet: the first core start makes it.
    }
  }
}

/** Publishes events 0…events-1 over `links` links, 256 unanswered at a time. */
export async function publishBacklog(bus: JetStreamBus, events: number, links: number): Promise<void> {
  const pending: Promise<unknown>[] = [];
  for (let n = 0; n < events; n++) {
    const e = benchEvent(n, links);
    pending.push(bus.publish(subjects.inbound(e.source), encodeJson(e), { msgId: e.id }));
    if (pending.length >= 256) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

export async function outboundCount(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.info("FEDGATE_OUTBOUND")).state.messages;
}

/**
 * Paced load: `events` events at `perSecond`, each timed from its publish to its outbound message. Both the
 * forwarder's copy and the core's delivery carry the event's text, which names its number.
 */
export async function pacedLatency(
  nc: NatsConnection,
  bus: JetStreamBus,
  options: { events: number; perSecond: number; links: number; name: string },
): Promise<{ p50: number; p99: number }> {
  const sentAt = new Map<number, number>();
  const samples: number[] = [];
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
  try {
    const interval = 1000 / options.perSecond;
    const begin = performance.now();
    for (let n = 0; n < options.events; n++) {
      const wait = begin + n * interval - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const e = benchEvent(n, options.links);
      sentAt.set(n, performance.now());
      void bus.publish(subjects.inbound(e.source), encodeJson(e), { msgId: e.id });
    }
    const deadline = performance.now() + 60_000;
    while (samples.length < options.events && performance.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
  } finally {
    sub.unsubscribe();
  }
  if (samples.length < options.events)
    throw new Error(
      `${options.name}: only ${String(samples.length)}/${String(options.events)} events arrived`,
    );
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}
