/**
 * The message horizon against a real nats-server: the gateway sets how long both buckets that remember a
 * message keep it, bridges opening them do not undo it, entries are gone after it, and what one bridged
 * message costs in them. The adapters are fakes on the kit that answer with ids shaped like their network's
 * (no protocol is crossed); the core is the real one.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Endpoint, NormalisedEvent } from "../../schemas/types.js";
import { AdapterRuntime, type NativeMessage } from "../../bridges/kit/AdapterRuntime.js";
import { toNativeMessage } from "../../bridges/xmpp/messageIds.js";
import { originIdFor } from "../../bridges/xmpp/deliveryIds.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { loadConfig } from "../../gateway/platform/config/loadConfig.js";
import { GatewayService } from "../../gateway/core/GatewayService.js";
import { createLogger } from "../../gateway/platform/log.js";
import { buckets, horizonBuckets } from "../../schemas/contract/topology.js";
import {
  eventually,
  examplePolicyFile,
  matrixRoom,
  message,
  stashcatChannel,
  writeGatewayConfig,
  xmppRoom,
} from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const DAY_MS = 24 * 60 * 60 * 1000;
const NANOS_PER_MS = 1_000_000;

/** A native id as each network gives one, and the other ids the same message has there. */
function nativeIdOf(network: string, deliveryId: string): NativeMessage {
  switch (network) {
    case "xmpp":
      return (
        toNativeMessage({
          originId: originIdFor(deliveryId, 0),
          stanzaId: randomUUID(),
          author: "claire.martin.tchap@bridge.bpol.localhost",
        }) ?? { id: deliveryId }
      );
    case "matrix":
      return { id: `$${randomBytes(32).toString("base64url")}` };
    default:
      return { id: String(100_000 + Math.floor(Math.random() * 900_000)) };
  }
}

/** A message written on `from`, with the ids its network gives it. */
function written(from: Endpoint, n: number): { event: NormalisedEvent; ids: NativeMessage } {
  const native = nativeIdOf(from.network, randomUUID());
  const event = message(from, `Lagemeldung ${String(n)}`);
  event.source.messageId = native.id;
  if (from.network === "xmpp") event.id = createHash("sha256").update(native.id).digest("hex").slice(0, 32);
  return { event, ids: native };
}

describe.skipIf(nats === undefined)("message horizon - against a real nats-server", () => {
  let bus: JetStreamBus;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const adapters = new Map<string, AdapterRuntime>();
  const delivered = new Set<string>();
  let gateway: GatewayService | undefined;

  async function startGateway(gatewaySettings: Record<string, unknown> = {}): Promise<void> {
    await gateway?.stop();
    const file = await writeGatewayConfig(nats?.url ?? "", {
      gateway: { policyFile: examplePolicyFile, ackWaitMs: 2000, ...gatewaySettings },
    });
    gateway = await GatewayService.start(await loadConfig(file, {}), log);
  }

  async function stored(bucket: string): Promise<{ bytes: number; entries: number; maxAgeMs: number }> {
    const { state, config } = await jsm.streams.info(`KV_${bucket}`);
    return { bytes: state.bytes, entries: state.messages, maxAgeMs: config.max_age / NANOS_PER_MS };
  }

  /** Bridges `count` messages, written in turn on each network, and waits until every target recorded them. */
  async function bridge(count: number): Promise<NormalisedEvent[]> {
    const sources = [matrixRoom, xmppRoom, stashcatChannel];
    const events: NormalisedEvent[] = [];
    for (let n = 0; n < count; n++) {
      const from = sources[n % sources.length] ?? matrixRoom;
      const { event, ids } = written(from, n);
      await adapters.get(from.network)?.publish(event, ids);
      events.push(event);
    }
    await eventually(
      () => (events.every((e) => delivered.has(`${e.id} 2`)) ? true : undefined),
      30_000,
      "every message delivered to both other networks",
    );
    return events;
  }

  beforeAll(async () => {
    if (nats === undefined) return;
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
    // The bridges are there first: they make the message map, without a horizon.
    for (const network of ["xmpp", "matrix", "stashcat"]) {
      const instance = { xmpp: "bpol", matrix: "tchap", stashcat: "ni" }[network] ?? "";
      const runtime = await AdapterRuntime.open(bus, { network, instance, log, ackWaitMs: 2000 });
      await runtime.consumeDeliveries((delivery) => {
        const copies = [...delivered].filter((d) => d.startsWith(`${delivery.event.id} `)).length;
        delivered.add(`${delivery.event.id} ${String(copies + 1)}`);
        return Promise.resolve(nativeIdOf(network, delivery.id));
      });
      adapters.set(network, runtime);
    }
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await Promise.all([...adapters.values()].map((a) => a.close()));
    await gateway?.stop();
    await bus.close();
    await nc.close();
    await nats.stop();
  });

  it("message horizon - a bridged message leaves few entries and bytes in the two buckets", async () => {
    await startGateway();
    const count = 60;
    const before = await Promise.all(horizonBuckets.map(stored));
    await bridge(count);
    const after = await Promise.all(horizonBuckets.map(stored));
    const [map, ledger] = after.map((a, i) => ({
      bytes: (a.bytes - (before[i]?.bytes ?? 0)) / count,
      entries: (a.entries - (before[i]?.entries ?? 0)) / count,
    }));
    console.info(
      `per bridged message (3 conversations): ${buckets.messages} ${String(map?.entries)} entries, ` +
        `${String(map?.bytes)} bytes; ${buckets.deliveries} ${String(ledger?.entries)} entries, ` +
        `${String(ledger?.bytes)} bytes`,
    );
    // Two ids and a ledger entry per conversation and message, XMPP's two aliases, no key for its packed id:
    // 9 entries and about 2,090 bytes when the packed id had a key of its own.
    expect((map?.entries ?? 0) + (ledger?.entries ?? 0)).toBeLessThanOrEqual(8);
    expect((map?.bytes ?? 0) + (ledger?.bytes ?? 0)).toBeLessThan(1900);
  });

  it("message horizon - the gateway sets it on both buckets, and a bridge opening them later leaves it", async () => {
    await startGateway({ messageHorizonDays: 2, messageStoreMaxBytes: 64 * 1024 * 1024 });
    for (const bucket of horizonBuckets) {
      expect((await stored(bucket)).maxAgeMs).toBe(2 * DAY_MS);
      expect((await jsm.streams.info(`KV_${bucket}`)).config.max_bytes).toBe(64 * 1024 * 1024);
    }
    const late = await AdapterRuntime.open(bus, { network: "xmpp", instance: "zoll", log });
    await late.close();
    for (const bucket of horizonBuckets) expect((await stored(bucket)).maxAgeMs).toBe(2 * DAY_MS);
  });

  it("message horizon - past a short horizon, a message's ids and its routing decision are gone", async () => {
    await startGateway({ messageHorizonDays: 3 / (24 * 60 * 60) });
    const [event] = await bridge(1);
    const map = await bus.keyValue(buckets.messages);
    const ledger = await bus.keyValue(buckets.deliveries);
    expect(await map.keys(`e.${event?.id ?? ""}.>`)).toHaveLength(3);
    expect(await ledger.get(`e.${event?.id ?? ""}`)).toBeDefined();
    await eventually(
      async () => {
        const left = await Promise.all(horizonBuckets.map(stored));
        return left.every((b) => b.entries === 0) ? true : undefined;
      },
      20_000,
      "both buckets empty",
    );
  });
});
