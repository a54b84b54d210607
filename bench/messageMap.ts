/**
 * What remembering messages costs nats-server. Messages are written to the message map and the delivery
 * ledger as a bridged message is: the core's ledger entry, and for the conversation it was written in and the
 * one it was delivered to, the native id both ways (MessageMap.record, as the adapters call it), into buckets
 * limited as the gateway limits them (limitMessageStores). Reported: bytes and entries per message in the
 * buckets, and the server's RSS as the messages go in; then the same with a small byte limit, where the
 * oldest entries are dropped and the server's memory levels off.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { Endpoint } from "../schemas/types.js";
import { validateConfig } from "../schemas/contract/schemas.js";
import { JetStreamBus } from "../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../gateway/platform/log.js";
import { limitMessageStores } from "../gateway/core/GatewayService.js";
import { DeliveryLedger } from "../gateway/core/routing/DeliveryLedger.js";
import { MessageMap } from "../gateway/platform/stores/MessageMap.js";
import { conversationKey } from "../gateway/platform/stores/LinkStore.js";
import { buckets, horizonBuckets } from "../schemas/contract/topology.js";
import { LocalNatsServer } from "../test/harness/servers/LocalNatsServer.js";
import { natsPidOf, rssOf } from "./processes.js";

const log = createLogger("warn", "fedgate-bench");
const MiB = 1024 * 1024;
/** Messages written at once: enough to keep the server busy, as many partitions working would. */
const IN_FLIGHT = 256;
/** How many times along the way the server's memory is read. */
const CHECKPOINTS = 5;

export interface MessageMapFigures {
  /** The byte limit per bucket the run had. */
  maxBytes: number;
  messages: number;
  /** Entries and bytes kept in both buckets at the end, per message written. */
  entriesPerMessage: number;
  bytesPerMessage: number;
  /** Stored bytes in both buckets at the end. */
  storedBytes: number;
  /** nats-server's RSS before the first message and at each checkpoint: [messages written, bytes]. */
  rssBefore: number;
  rss: [number, number][];
  messagesPerSecond: number;
}

const source: Endpoint = {
  network: "matrix",
  instance: "tchap",
  conversation: "!lage:tchap.example",
  agency: "dinum-mi",
};
const target: Endpoint = {
  network: "stashcat",
  instance: "ni",
  conversation: "channel:1001",
  agency: "polizei-ni",
};

/**
 * Writes `messages` bridged messages into fresh buckets limited as a gateway with the default config limits
 * them, or to `maxBytes` each.
 */
export async function runMessageMapBenchmark(options: {
  messages: number;
  maxBytes?: number;
}): Promise<MessageMapFigures> {
  const nats = await LocalNatsServer.start();
  const bus = await JetStreamBus.connect({ servers: nats.url, log });
  try {
    const defaults = validateConfig({ nats: { url: nats.url } }).gateway;
    const gateway = { ...defaults, messageStoreMaxBytes: options.maxBytes ?? defaults.messageStoreMaxBytes };
    await limitMessageStores(bus, gateway);
    const map = new MessageMap(await bus.keyValue(buckets.messages));
    const ledger = new DeliveryLedger(await bus.keyValue(buckets.deliveries));
    const pid = await natsPidOf(nats.storeDir);
    const rssBefore = await rssOf(pid);
    const rss: [number, number][] = [];
    const every = Math.max(1, Math.floor(options.messages / CHECKPOINTS));
    const started = performance.now();
    const inFlight = new Set<Promise<void>>();
    for (let n = 0; n < options.messages; n++) {
      const write = bridged(map, ledger).then(() => {
        inFlight.delete(write);
      });
      inFlight.add(write);
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      if ((n + 1) % every === 0) {
        await Promise.all(inFlight);
        rss.push([n + 1, await rssOf(pid)]);
        console.log(`bench: message map, ${String(n + 1)} of ${String(options.messages)} messages`);
      }
    }
    await Promise.all(inFlight);
    const seconds = (performance.now() - started) / 1000;
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    let entries = 0;
    let storedBytes = 0;
    for (const bucket of horizonBuckets) {
      const { state } = await jsm.streams.info(`KV_${bucket}`);
      entries += state.messages;
      storedBytes += state.bytes;
    }
    await nc.close();
    return {
      maxBytes: gateway.messageStoreMaxBytes,
      messages: options.messages,
      entriesPerMessage: entries / options.messages,
      bytesPerMessage: storedBytes / options.messages,
      storedBytes,
      rssBefore,
      rss,
      messagesPerSecond: options.messages / seconds,
    };
  } finally {
    await bus.close();
    await nats.stop();
  }
}

/** One message written on Tchap and delivered to Stashcat, with ids shaped like those networks'. */
async function bridged(map: MessageMap, ledger: DeliveryLedger): Promise<void> {
  const eventId = randomUUID();
  await ledger.record(eventId, {
    author: `${source.network}/${source.instance}/@claire.martin:tchap.example`,
    source: conversationKey(source),
    reached: [conversationKey(source), conversationKey(target)],
    withheld: [],
  });
  await Promise.all([
    map.record(eventId, source, `$${randomBytes(32).toString("base64url")}`),
    map.record(eventId, target, String(100_000_000 + Math.floor(Math.random() * 900_000_000))),
  ]);
}

/** Prints a run's figures. */
export function printMessageMap(figures: MessageMapFigures): void {
  const limit = `${(figures.maxBytes / MiB).toFixed(0)} MiB per bucket`;
  console.log(
    `\nmessage map, ${String(figures.messages)} bridged messages, ${limit} ` +
      `(${figures.messagesPerSecond.toFixed(0)} msg/s written)`,
  );
  console.log(
    `kept: ${figures.entriesPerMessage.toFixed(2)} entries and ${figures.bytesPerMessage.toFixed(0)} B per message ` +
      `written, ${(figures.storedBytes / MiB).toFixed(1)} MiB in all`,
  );
  const row = ([messages, bytes]: [number, number]): string =>
    `${String(messages).padStart(10)} messages   nats-server RSS ${(bytes / MiB).toFixed(0).padStart(6)} MiB` +
    `   ${((bytes - figures.rssBefore) / messages).toFixed(0).padStart(5)} B per message`;
  console.log(
    `${"0".padStart(10)} messages   nats-server RSS ${(figures.rssBefore / MiB).toFixed(0).padStart(6)} MiB`,
  );
  for (const point of figures.rss) console.log(row(point));
}
