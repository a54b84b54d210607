/**
 * A bridge's connection health as the core reads it, against a real nats-server: a ConnectionWatch's state,
 * stalls and reconnects land in the bridge health bucket, stay while the bridge reports, and expire once it
 * stops, so the console shows it as not reporting. The bucket's TTL is shortened here to keep the test quick.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BridgeHealth } from "../../schemas/types.js";
import { validateBridgeHealth } from "../../schemas/contract/schemas.js";
import { bridgeHealthKey, buckets } from "../../schemas/contract/topology.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { decodeJson, type KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import { createLogger } from "../../gateway/platform/log.js";
import { BridgeHealthReport } from "../../bridges/kit/BridgeHealthReport.js";
import { ConnectionWatch } from "../../bridges/kit/ConnectionWatch.js";
import { eventually } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const TTL_MS = 2000;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(nats === undefined)("bridge health - reported to the bucket, expiring when it stops", () => {
  let bus: JetStreamBus;
  let kv: KeyValueStore;

  beforeAll(async () => {
    if (nats === undefined) return;
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await bus.ensureTopology();
    kv = await bus.keyValue(buckets.bridgeHealth, { ttlMs: TTL_MS });
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await bus.close();
    await nats.stop();
  });

  const reported = async (): Promise<BridgeHealth | undefined> => {
    const entry = await kv.get(bridgeHealthKey("xmpp", "health"));
    return entry === undefined ? undefined : validateBridgeHealth(decodeJson(entry.value));
  };

  it("bridge health - a stall and a reconnect land in the bucket; the entry lives while reported and expires after the bridge stops", async () => {
    let answering = true;
    // Round trips to NATS stand in for the bridge's server; one frozen stalls.
    const watch = new ConnectionWatch(
      {
        ping: async () => {
          if (!answering) await new Promise(() => undefined);
          if (!(await bus.answers(1000))) throw new Error("NATS does not answer");
        },
        reconnect: () => Promise.resolve(),
      },
      { network: "xmpp", instance: "health", log, check: { intervalMs: 400, timeoutMs: 200 } },
    );
    const startedAt = Date.now();
    watch.start();
    const report = await BridgeHealthReport.start(bus, watch, {
      network: "xmpp",
      instance: "health",
      log,
      ttlMs: TTL_MS,
    });
    try {
      expect(await reported()).toMatchObject({
        specVersion: "1",
        network: "xmpp",
        instance: "health",
        connected: true,
        answering: true,
        stalls: 0,
        reconnects: 0,
      });
      expect(Date.parse((await reported())?.startedAt ?? "")).toBeGreaterThanOrEqual(startedAt - 1000);
      const answered = await eventually(async () => (await reported())?.roundTripMs, 5000, "a round trip");
      expect(answered).toBeGreaterThanOrEqual(0);
      expect(answered).toBeLessThan(200);

      answering = false;
      const stalled = await eventually(
        async () => ((await reported())?.answering === false ? await reported() : undefined),
        5000,
        "the stall reported",
      );
      expect(stalled).toMatchObject({ connected: true, answering: false, stalls: 1 });
      // The adapter's connection drops and comes back: written on each change, not at the next interval.
      answering = true;
      watch.disconnectedNow();
      await eventually(
        async () => ((await reported())?.connected === false ? true : undefined),
        1000,
        "the disconnection reported",
      );
      watch.connectedNow();
      await sleep(100);
      expect(await reported()).toMatchObject({ connected: true, answering: true, reconnects: 1 });

      // Written again well within the TTL, so a reporting bridge's entry never expires.
      await sleep(TTL_MS * 2);
      const live = await reported();
      expect(live?.connected).toBe(true);
      expect(Date.now() - Date.parse(live?.updatedAt ?? "")).toBeLessThan(TTL_MS);
    } finally {
      watch.stop();
      await report.stop();
    }
    const stoppedAt = Date.now();
    await eventually(async () => ((await reported()) === undefined ? true : undefined), TTL_MS * 5, "expiry");
    expect(Date.now() - stoppedAt).toBeGreaterThan(TTL_MS / 3);
  }, 30_000);
});
