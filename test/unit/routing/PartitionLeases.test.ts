import { describe, expect, it } from "vitest";
import { MemoryKeyValue } from "../../../gateway/bus/MemoryKeyValue.js";
import { createLogger } from "../../../gateway/log.js";
import { PartitionLeases } from "../../../gateway/routing/PartitionLeases.js";
import { encodeJson } from "../../../gateway/stores/KeyValueStore.js";

const log = createLogger("silent");
const PARTITIONS = 8;
const TTL = 1000;

/** A replica's view: which partitions it works on, and a shared log of acquire/release calls. */
function replica(
  kv: MemoryKeyValue,
  id: string,
  events: string[],
): { leases: PartitionLeases; working: Set<number> } {
  const working = new Set<number>();
  const leases = new PartitionLeases({
    kv,
    replicaId: id,
    partitions: PARTITIONS,
    ttlMs: TTL,
    log,
    acquire: (p) => {
      events.push(`${id} acquire ${p}`);
      working.add(p);
      return Promise.resolve();
    },
    release: async (p) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      events.push(`${id} release ${p}`);
      working.delete(p);
    },
  });
  return { leases, working };
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
    const a = replica(kv, "a", []);
    const b = replica(kv, "b", []);
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

  it("PartitionLeases - a lease someone else overwrote is given up and its work stopped", async () => {
    const kv = new MemoryKeyValue(TTL);
    const a = replica(kv, "a", []);
    await a.leases.tick();
    await kv.put("partition.3", encodeJson("intruder"));
    await a.leases.tick();
    expect(a.working.has(3)).toBe(false);
    expect(a.working.size).toBe(PARTITIONS - 1);
  });
});
