import { describe, expect, it } from "vitest";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { leaseTimings, PartitionLeases } from "../../../gateway/core/routing/PartitionLeases.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";

const log = createLogger("silent");
const PARTITIONS = 8;
const TTL = 1000;
/** Work is taken under a lease confirmed this recently; the rest of the TTL covers work still unsettled. */
const FRESH = 600;

/**
 * A replica's view: which partitions it works on, a shared log of acquire/release calls, and how many
 * releases ran at once at most (each takes releaseMs, as a consumer finishing its last batch does). `now`
 * is the clock the KV store expires entries by.
 */
function replica(
  kv: MemoryKeyValue,
  id: string,
  events: string[],
  {
    releaseMs = 1,
    acquireMs = 0,
    now = Date.now,
  }: { releaseMs?: number; acquireMs?: number; now?: () => number } = {},
): {
  leases: PartitionLeases;
  working: Set<number>;
  releasing: { now: number; most: number };
  acquiring: { now: number; most: number };
} {
  const working = new Set<number>();
  const releasing = { now: 0, most: 0 };
  const acquiring = { now: 0, most: 0 };
  const leases = new PartitionLeases({
    kv,
    replicaId: id,
    partitions: PARTITIONS,
    ttlMs: TTL,
    freshMs: FRESH,
    log,
    now,
    acquire: async (p) => {
      acquiring.most = Math.max(acquiring.most, ++acquiring.now);
      if (acquireMs > 0) await new Promise((resolve) => setTimeout(resolve, acquireMs));
      acquiring.now--;
      events.push(`${id} acquire ${p}`);
      working.add(p);
    },
    release: async (p) => {
      releasing.most = Math.max(releasing.most, ++releasing.now);
      await new Promise((resolve) => setTimeout(resolve, releaseMs));
      releasing.now--;
      events.push(`${id} release ${p}`);
      working.delete(p);
    },
  });
  return { leases, working, releasing, acquiring };
}

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe("PartitionLeases - which replica works on which partition", () => {
  it("PartitionLeases - a lone replica works on every partition", async () => {
    const a = replica(new MemoryKeyValue(TTL), "a", []);
    await a.leases.tick();
    expect([...a.working].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("PartitionLeases - a second replica gets a fair share, and no partition is worked on twice", async () => {
    const kv = new MemoryKeyValue(TTL);
    const events: string[] = [];
    const a = replica(kv, "a", events);
    const b = replica(kv, "b", events);
    await a.leases.tick();
    await b.leases.tick(); // b announces itself; every partition is still a's
    expect(b.working.size).toBe(0);
    await a.leases.tick(); // a sees two replicas and gives half back
    await b.leases.tick(); // b claims them
    expect(a.working.size).toBe(4);
    expect(b.working.size).toBe(4);
    expect([...a.working].filter((p) => b.working.has(p))).toEqual([]);
    // Each handed-over partition was released by a before b acquired it.
    for (const p of b.working) {
      expect(events.indexOf(`a release ${p}`)).toBeLessThan(events.indexOf(`b acquire ${p}`));
    }
  });

  it("PartitionLeases - a replica that stops hands everything over at once", async () => {
    const kv = new MemoryKeyValue(TTL);
    const a = replica(kv, "a", []);
    const b = replica(kv, "b", []);
    await a.leases.tick();
    await b.leases.tick();
    await a.leases.tick();
    await b.leases.tick();
    await a.leases.stop();
    expect(a.working.size).toBe(0);
    await b.leases.tick();
    expect(b.working.size).toBe(PARTITIONS);
  });

  it("PartitionLeases - the leases of a replica that died expire, and the survivor takes them over", async () => {
    const time = clock();
    const kv = new MemoryKeyValue(TTL, time.now);
    const a = replica(kv, "a", [], { now: time.now });
    const b = replica(kv, "b", [], { now: time.now });
    await a.leases.tick();
    await b.leases.tick();
    await a.leases.tick();
    await b.leases.tick();
    const orphaned = [...a.working];
    // a is killed: it never ticks again. Before its TTL nothing moves.
    time.advance(TTL / 2);
    await b.leases.tick();
    expect(b.working.size).toBe(4);
    time.advance(TTL);
    await b.leases.tick();
    expect(b.working.size).toBe(PARTITIONS);
    expect(orphaned.every((p) => b.working.has(p))).toBe(true);
  });

  it("PartitionLeases - the survivor starts work on a dead replica's partitions side by side, not one after another", async () => {
    const time = clock();
    const kv = new MemoryKeyValue(TTL, time.now);
    const a = replica(kv, "a", [], { now: time.now });
    // Starting a partition's consumer takes a while: one after another, a takeover lasts that times their number.
    const b = replica(kv, "b", [], { now: time.now, acquireMs: 20 });
    await a.leases.tick();
    await b.leases.tick();
    await a.leases.tick();
    await b.leases.tick();
    b.acquiring.most = 0;
    time.advance(TTL * 2);
    await b.leases.tick();
    expect(b.working.size).toBe(PARTITIONS);
    expect(b.acquiring.most).toBe(PARTITIONS / 2);
  });

  it("PartitionLeases - after a stall longer than the TTL, leases no one took are taken back at once, and work never stops", async () => {
    const time = clock();
    const kv = new MemoryKeyValue(TTL, time.now);
    const events: string[] = [];
    const a = replica(kv, "a", events, { now: time.now });
    await a.leases.tick();
    events.length = 0;
    expect(a.leases.isFresh(0)).toBe(true);
    // a is frozen (SIGSTOP, a GC pause): every lease and its heartbeat expire.
    time.advance(TTL * 2);
    // Waking, it takes no new work before its leases are confirmed.
    expect(a.leases.isFresh(0)).toBe(false);
    await a.leases.tick();
    expect(events).toEqual([]);
    expect(a.working.size).toBe(PARTITIONS);
    expect(a.leases.isFresh(0)).toBe(true);
    expect((await kv.keys("partition.>")).length).toBe(PARTITIONS);
    // The leases taken back are refreshed as before.
    for (let i = 0; i < 4; i++) {
      time.advance(FRESH / 2);
      await a.leases.tick();
    }
    expect(events).toEqual([]);
    expect(a.leases.isFresh(0)).toBe(true);
  });

  it("PartitionLeases - after a stall, leases another replica took meanwhile are given up all at once", async () => {
    const time = clock();
    const kv = new MemoryKeyValue(TTL, time.now);
    const events: string[] = [];
    const a = replica(kv, "a", events, { releaseMs: 20, now: time.now });
    await a.leases.tick();
    time.advance(TTL * 2);
    // While a is frozen, b finds it gone and takes everything.
    const b = replica(kv, "b", events, { now: time.now });
    await b.leases.tick();
    expect(b.working.size).toBe(PARTITIONS);
    expect(a.leases.isFresh(0)).toBe(false);
    await a.leases.tick();
    expect(a.working.size).toBe(0);
    expect(a.leases.isFresh(0)).toBe(false);
    expect(events.filter((e) => e.startsWith("a release"))).toHaveLength(PARTITIONS);
    expect(a.releasing.most).toBe(PARTITIONS);
    expect(b.working.size).toBe(PARTITIONS);
  });

  it("PartitionLeases - a lease that cannot be confirmed is not worked under after freshMs, and its work stops", async () => {
    const time = clock();
    const kv = new MemoryKeyValue(TTL, time.now);
    let reachable = true;
    const unreachable = (): Promise<never> => Promise.reject(new Error("NATS is away"));
    // Writes fail (a slow or partitioned NATS) while reads and the heartbeat still go through.
    const flaky = Object.assign(Object.create(kv) as MemoryKeyValue, {
      update: (key: string, value: Uint8Array, revision: number) =>
        reachable ? kv.update(key, value, revision) : unreachable(),
      create: (key: string, value: Uint8Array) => (reachable ? kv.create(key, value) : unreachable()),
    });
    const a = replica(flaky, "a", [], { now: time.now });
    await a.leases.tick();
    reachable = false;
    time.advance(FRESH / 2);
    await a.leases.tick();
    expect(a.leases.isFresh(0)).toBe(true);
    expect(a.working.size).toBe(PARTITIONS);
    time.advance(FRESH / 2);
    expect(a.leases.isFresh(0)).toBe(false);
    await a.leases.tick();
    expect(a.working.size).toBe(0);
    // The store back, the leases are claimed again.
    reachable = true;
    time.advance(TTL);
    await a.leases.tick();
    expect(a.leases.isFresh(0)).toBe(true);
    expect(a.working.size).toBe(PARTITIONS);
  });

  it("PartitionLeases - a refresh whose answer was lost keeps the lease, written again", async () => {
    const kv = new MemoryKeyValue(TTL);
    let loseAnswer = false;
    const lossy = Object.assign(Object.create(kv) as MemoryKeyValue, {
      update: async (key: string, value: Uint8Array, revision: number) => {
        const written = await kv.update(key, value, revision);
        if (!loseAnswer) return written;
        loseAnswer = false;
        throw new Error("no answer");
      },
    });
    const events: string[] = [];
    const a = replica(lossy, "a", events);
    await a.leases.tick();
    loseAnswer = true;
    await a.leases.tick();
    await a.leases.tick();
    expect(events.filter((e) => e.includes("release"))).toEqual([]);
    expect(a.working.size).toBe(PARTITIONS);
    expect(a.leases.isFresh(0)).toBe(true);
  });

  it("PartitionLeases - a lease someone else overwrote is given up and its work stopped", async () => {
    const kv = new MemoryKeyValue(TTL);
    const a = replica(kv, "a", []);
    await a.leases.tick();
    await kv.put("partition.3", encodeJson("intruder"));
    await a.leases.tick();
    expect(a.working.has(3)).toBe(false);
    expect(a.working.size).toBe(PARTITIONS - 1);
  });

  it("PartitionLeases - a lease outlives its last confirmation by freshMs and the time work taken under it can stay unsettled", () => {
    for (const ackWaitMs of [500, 2000, 30_000, 300_000]) {
      const pullWindowMs = 2000;
      const { ttlMs, freshMs } = leaseTimings(ackWaitMs, pullWindowMs);
      // Taken at the last fresh moment, a message reaches the holder until the pull ends and is due for
      // redelivery an ack wait later: before the lease can expire.
      expect(ttlMs - freshMs, `ack wait ${ackWaitMs} ms`).toBeGreaterThanOrEqual(pullWindowMs + ackWaitMs);
      // Rounds come every freshMs / 3, so one late or failed round leaves a lease fresh.
      expect(freshMs).toBeGreaterThanOrEqual(3000);
    }
  });
});
