import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BusMessage } from "../../gateway/platform/bus/Bus.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { LocalNatsServer } from "../harness/servers/LocalNatsServer.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { createLogger } from "../../gateway/platform/log.js";
import { KeyExistsError } from "../../gateway/platform/bus/KeyValueStore.js";
import { eventually } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const policy = { origin: "test", log, maxAttempts: 3 };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const text = (m: BusMessage): string => Buffer.from(m.data).toString();
const keyOf = (m: BusMessage): string => text(m).split(":")[0] ?? "";

describe.skipIf(nats === undefined)("JetStreamBus - against a real nats-server", () => {
  let bus: JetStreamBus;

  beforeAll(async () => {
    if (nats === undefined) return;
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    // Two processes setting up at once must both succeed.
    const other = await JetStreamBus.connect({ servers: nats.url, log });
    await Promise.all([bus.ensureTopology(), other.ensureTopology()]);
    await other.close();
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await bus.close();
    await nats.stop();
  });

  it("JetStreamBus - a message id publishes once", async () => {
    const subject = subjects.outbound("xmpp", "dedup");
    const first = await bus.publish(subject, Buffer.from("x"), { msgId: "same-id" });
    const second = await bus.publish(subject, Buffer.from("x"), { msgId: "same-id" });
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
  });

  it("JetStreamBus - messages of one key are handled in order, different keys at once", async () => {
    const subject = subjects.outbound("xmpp", "order");
    const keys = ["a", "b", "c", "d", "e"];
    for (let n = 0; n < 200; n++)
      await bus.publish(subject, Buffer.from(`${keys[n % keys.length] ?? ""}:${n}`));
    const handled = new Map<string, number[]>();
    let running = 0;
    let maxRunning = 0;
    const subscription = await bus.consume(
      {
        stream: "FEDGATE_OUTBOUND",
        durable: "order",
        filterSubject: subject,
        maxAckPending: 32,
        ackWaitMs: 5000,
        orderingKey: keyOf,
      },
      async (m) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(Math.random() * 3);
        const [key, n] = text(m).split(":");
        handled.set(key ?? "", [...(handled.get(key ?? "") ?? []), Number(n)]);
        running--;
      },
      policy,
    );
    await eventually(() => ([...handled.values()].flat().length === 200 ? true : undefined));
    await subscription.stop();
    for (const key of keys) {
      const ns = handled.get(key) ?? [];
      expect(ns).toEqual([...ns].sort((x, y) => x - y));
      expect(ns).toHaveLength(40);
    }
    expect(maxRunning).toBeGreaterThan(1);
  });

  it("JetStreamBus - a stopped consumer finishes what it was given, and the next continues in order, once", async () => {
    const subject = subjects.outbound("xmpp", "handover");
    const total = 200;
    // Messages keep arriving while the first consumer stops and the second takes over.
    const publishing = (async () => {
      for (let n = 0; n < total; n++) {
        await bus.publish(subject, Buffer.from(`k${n % 3}:${n}`));
        await sleep(20);
      }
    })();
    const spec = {
      stream: "FEDGATE_OUTBOUND",
      durable: "handover",
      filterSubject: subject,
      maxAckPending: 16,
      ackWaitMs: 30_000,
      orderingKey: keyOf,
    } as const;
    const byFirst: string[] = [];
    const bySecond: string[] = [];
    const first = await bus.consume(
      spec,
      async (m) => {
        await sleep(5);
        byFirst.push(text(m));
      },
      policy,
    );
    await eventually(() => (byFirst.length >= 10 ? true : undefined));
    await first.stop();
    const firstCount = byFirst.length;
    // The ack wait is 30 s: a message left delivered but unhandled would hold the second consumer up that long.
    const second = await bus.consume(spec, (m) => Promise.resolve(void bySecond.push(text(m))), policy);
    await publishing;
    const handled = (): string[] => [...byFirst, ...bySecond];
    await eventually(() => (handled().length >= total ? true : undefined), 10_000, `all ${total} messages`);
    await sleep(200);
    await second.stop();
    expect(byFirst).toHaveLength(firstCount);
    expect(bySecond.length).toBeGreaterThan(0);
    expect(handled()).toHaveLength(total);
    expect(new Set(handled()).size).toBe(total);
    for (const key of ["k0", "k1", "k2"]) {
      const ns = handled()
        .filter((h) => h.startsWith(`${key}:`))
        .map((h) => Number(h.split(":")[1]));
      expect(ns).toEqual([...ns].sort((x, y) => x - y));
    }
  });

  it("JetStreamBus - key-value create and update refuse to overwrite someone else's write", async () => {
    const kv = await bus.keyValue("fedgate_test_cas");
    const revision = await kv.create("lease.1", Buffer.from("a"));
    await expect(kv.create("lease.1", Buffer.from("b"))).rejects.toBeInstanceOf(KeyExistsError);
    const next = await kv.update("lease.1", Buffer.from("a2"), revision);
    await expect(kv.update("lease.1", Buffer.from("b"), revision)).rejects.toBeInstanceOf(KeyExistsError);
    expect((await kv.get("lease.1"))?.revision).toBe(next);
  });

  it("JetStreamBus - key-value entries in a bucket with a TTL expire", async () => {
    const kv = await bus.keyValue("fedgate_test_ttl", { ttlMs: 1000 });
    await kv.create("lease.1", Buffer.from("a"));
    expect(await kv.get("lease.1")).toBeDefined();
    await eventually(
      async () => ((await kv.get("lease.1")) === undefined ? true : undefined),
      5000,
      "expiry",
    );
    // An expired key can be claimed again.
    await expect(kv.create("lease.1", Buffer.from("b"))).resolves.toBeGreaterThan(0);
  });

  it("JetStreamBus - a bucket opened with another TTL than it was made with expires entries by the new one", async () => {
    await bus.keyValue("fedgate_test_ttl_change", { ttlMs: 60_000 });
    const kv = await bus.keyValue("fedgate_test_ttl_change", { ttlMs: 1000 });
    await kv.create("lease.1", Buffer.from("a"));
    await eventually(
      async () => ((await kv.get("lease.1")) === undefined ? true : undefined),
      5000,
      "expiry after 1 s, not 60 s",
    );
  });

  it("JetStreamBus - a full bucket with a byte limit drops its oldest entries and goes on taking writes", async () => {
    const kv = await bus.keyValue("fedgate_test_full", { maxBytes: 64 * 1024 });
    const value = Buffer.alloc(1024, "x");
    for (let n = 0; n < 200; n++) await kv.create(`entry.${String(n)}`, value);
    expect(await kv.get("entry.0")).toBeUndefined();
    expect(await kv.get("entry.199")).toBeDefined();
    // Opened again without limits, as a bridge opens the message map: the limit stays.
    await bus.keyValue("fedgate_test_full");
    for (let n = 200; n < 400; n++) await kv.create(`entry.${String(n)}`, value);
    expect((await kv.keys()).length).toBeLessThan(64);
  });

  it("JetStreamBus - a consumer asks for nothing while mayPull says no, then takes each message once, in order", async () => {
    const subject = subjects.outbound("xmpp", "gate");
    let mayPull = false;
    const handled: string[] = [];
    const subscription = await bus.consume(
      {
        stream: "FEDGATE_OUTBOUND",
        durable: "gate",
        filterSubject: subject,
        maxAckPending: 32,
        ackWaitMs: 5000,
        mayPull: () => mayPull,
      },
      (m) => {
        handled.push(text(m));
        return Promise.resolve();
      },
      policy,
    );
    for (let n = 0; n < 5; n++) await bus.publish(subject, Buffer.from(`g:${n}`));
    await sleep(500);
    expect(handled).toEqual([]);
    mayPull = true;
    await eventually(
      () => (handled.length === 5 ? true : undefined),
      5000,
      "messages once pulling may go on",
    );
    await subscription.stop();
    expect(handled).toEqual(["g:0", "g:1", "g:2", "g:3", "g:4"]);
  });

  it("JetStreamBus - every stream is bounded in bytes, messages and message size; work streams refuse rather than drop", async () => {
    const nc = await connect({ servers: nats?.url ?? "" });
    try {
      const jsm = await jetstreamManager(nc);
      const limits: Record<string, { bytes: number; msgs: number; size: number; discard: string }> = {};
      for (const name of ["FEDGATE_INBOUND", "FEDGATE_OUTBOUND", "FEDGATE_AUDIT", "FEDGATE_DEADLETTER"]) {
        const { config } = await jsm.streams.info(name);
        limits[name] = {
          bytes: config.max_bytes,
          msgs: config.max_msgs,
          size: config.max_msg_size,
          discard: config.discard,
        };
      }
      for (const [name, limit] of Object.entries(limits)) {
        expect(limit.bytes, name).toBeGreaterThan(0);
        expect(limit.msgs, name).toBeGreaterThan(0);
        expect(limit.size, name).toBeGreaterThan(0);
      }
      // A full work or audit stream refuses the publish, which the publisher retries: nothing silently lost.
      expect(limits["FEDGATE_INBOUND"]?.discard).toBe("new");
      expect(limits["FEDGATE_OUTBOUND"]?.discard).toBe("new");
      expect(limits["FEDGATE_AUDIT"]?.discard).toBe("new");
      // Dead letters are diagnostics: the newest are kept, and a flood of refused input never stops bridging.
      expect(limits["FEDGATE_DEADLETTER"]?.discard).toBe("old");
    } finally {
      await nc.close();
    }
  });

  it("JetStreamBus - a consumer stops promptly while NATS is away, instead of waiting on a pull that never ends", async () => {
    const own = await LocalNatsServer.start();
    const other = await JetStreamBus.connect({ servers: own.url, log });
    try {
      await other.ensureTopology();
      const subscription = await other.consume(
        {
          stream: "FEDGATE_OUTBOUND",
          durable: "stopping-while-away",
          filterSubject: subjects.outbound("xmpp", "away"),
          maxAckPending: 1,
          ackWaitMs: 5000,
        },
        () => Promise.resolve(),
        policy,
      );
      await own.restart(async () => {
        // A bridge shutting down while the bus is away must still shut down.
        const started = Date.now();
        await subscription.stop();
        expect(Date.now() - started).toBeLessThan(15_000);
      }, "SIGKILL");
    } finally {
      await other.close();
      await own.stop();
    }
  });
});
