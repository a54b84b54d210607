/**
 * Which core replica works on which inbound partition. A replica works only on partitions it holds a lease
 * for, so it may handle many events of one partition at once (one per conversation) without another replica
 * racing it on the same conversation.
 *
 * Leases live in a KV bucket whose entries expire ttlMs after their last write. Every freshMs/3 each replica
 * writes a heartbeat, refreshes its leases by compare-and-set, gives back leases above its fair share
 * (partitions / live replicas) once their work is done, and claims free ones. A replica takes new work for a
 * partition only while its lease was confirmed less than freshMs ago (isFresh); ttlMs is freshMs plus the
 * longest that new work can stay unacknowledged (the ack wait and a pull's length). So when a lease expires,
 * every event its holder took is settled or due for redelivery, and a replica taking the partition over gets
 * those again before newer events, whether the holder died or only stalled.
 *
 * A replica that stalled for longer than ttlMs (SIGSTOP, a long GC pause, a frozen VM, a slow NATS) finds its
 * leases expired. It takes back at once those no one took meanwhile and keeps working on them, and gives up
 * the others all at once: a stall of seconds costs seconds, not a round of releases one after another.
 */
import type { Logger } from "pino";
import { fnv1a32 } from "../../../schemas/contract/subjects.js";
import {
  decodeJson,
  encodeJson,
  KeyExistsError,
  keyToken,
  type KeyValueStore,
} from "../../platform/bus/KeyValueStore.js";
import { observableGauge } from "../../platform/telemetry.js";

export interface PartitionLeasesOptions {
  /** A bucket created with a TTL of ttlMs. */
  kv: KeyValueStore;
  replicaId: string;
  partitions: number;
  ttlMs: number;
  /**
   * How long after its last confirmation a lease may still be worked under; at most ttlMs less the longest
   * that work taken at that moment can stay unacknowledged.
   */
  freshMs: number;
  log: Logger;
  /** The clock; tests pass the one their KV store expires entries by. */
  now?: () => number;
  /** Starts work on a partition whose lease was just taken. */
  acquire(partition: number): Promise<void>;
  /** Stops work on a partition and resolves once none of its events is in work. */
  release(partition: number): Promise<void>;
}

/**
 * How long leases live (ttlMs) and are worked under after each confirmation (freshMs), for a consumer whose
 * messages stay unacknowledged for at most the ack wait after the pull that brought them ends. A lease
 * outlives its last confirmation by freshMs plus that, so that whatever its holder took, dead or stalled, is
 * due for redelivery before a successor can take the partition over.
 */
export function leaseTimings(ackWaitMs: number, pullWindowMs: number): { ttlMs: number; freshMs: number } {
  const unsettledMs = pullWindowMs + ackWaitMs;
  const freshMs = Math.max(3000, unsettledMs / 2);
  return { ttlMs: freshMs + unsettledMs, freshMs };
}

/** A lease written again, or taken back after it expired unclaimed; "lost" when another replica holds it. */
type Renewal = { revision: number; takenBack: boolean } | "lost";

interface Lease {
  revision: number;
  /** When the write that confirmed it was sent: its expiry counts from no earlier. */
  refreshedAt: number;
}

export class PartitionLeases {
  private readonly held = new Map<number, Lease>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  /** A round asked for while one runs: it follows at once, so a long round delays no refresh by a whole interval. */
  private queued: Promise<void> | undefined;
  private stopped = false;
  /** Ends the leases gauge's reports: a stopped replica holds none. */
  private stopGauge: (() => void) | undefined;

  private readonly now: () => number;

  constructor(private readonly options: PartitionLeasesOptions) {
    this.now = options.now ?? Date.now;
  }

  get intervalMs(): number {
    return Math.max(Math.floor(this.options.freshMs / 3), 50);
  }

  /** The partitions this replica works on now. */
  partitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** Takes a first share of the partitions, then keeps the share fair as replicas come and go. */
  async start(): Promise<void> {
    this.stopGauge ??= observableGauge(
      "fedgate.partition.leases",
      { description: "Inbound partitions whose lease this core replica holds" },
      (report) => report(this.held.size),
    );
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
  }

  /** Runs one round of heartbeat, refresh, give-back and claim; rounds never overlap. */
  tick(): Promise<void> {
    if (this.ticking !== undefined) {
      this.queued ??= this.ticking.then(() => {
        this.queued = undefined;
        return this.tick();
      });
      return this.queued;
    }
    this.ticking = this.round()
      .catch((error: unknown) => this.options.log.warn({ err: error }, "partition lease round failed"))
      .finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    const { kv, replicaId, partitions, log } = this.options;
    const before = this.held.size;
    await kv.put(`replica.${keyToken(replicaId)}`, encodeJson({ replicaId, at: new Date().toISOString() }));
    await this.refresh();
    const live = Math.max((await kv.keys("replica.>")).length, 1);
    const share = Math.ceil(partitions / live);
    // Give back the highest-numbered extras; their work finishes before the lease is deleted.
    // In parallel: each waits for its partition's last batch.
    const extras = this.partitions()
      .reverse()
      .slice(0, Math.max(this.held.size - share, 0));
    await Promise.all(extras.map((partition) => this.giveBack(partition)));
    // Claim free partitions, starting at a replica-specific offset so replicas do not all try the same ones.
    const offset = fnv1a32(replicaId) % partitions;
    const claimed: number[] = [];
    for (let i = 0; i < partitions && this.held.size < share; i++) {
      const partition = (offset + i) % partitions;
      if (this.held.has(partition)) continue;
      let revision: number;
      const sentAt = this.now();
      try {
        revision = await kv.create(leaseKey(partition), encodeJson(replicaId));
      } catch (error) {
        if (error instanceof KeyExistsError) continue;
        throw error;
      }
      this.held.set(partition, { revision, refreshedAt: sentAt });
      claimed.push(partition);
    }
    // Work starts on all of them side by side: a dead replica's partitions, taken over one consumer start
    // after another, would each wait for all those before it.
    await Promise.all(
      claimed.map(async (partition) => {
        try {
          await this.options.acquire(partition);
        } catch (error) {
          log.warn({ partition, err: error }, "cannot start work on a partition; giving its lease back");
          await this.giveBack(partition);
        }
      }),
    );
    if (this.held.size !== before) {
      log.info({ replicaId, held: this.held.size, live, share }, "partition leases changed");
    }
  }

  /**
   * Whether this replica may take new work for a partition: it holds the lease, confirmed less than freshMs
   * ago. False after a stall, until the next round confirms the lease again.
   */
  isFresh(partition: number): boolean {
    const lease = this.held.get(partition);
    return lease !== undefined && this.now() - lease.refreshedAt < this.options.freshMs;
  }

  /**
   * Refreshes every lease held, all at once; those lost, or unconfirmed for freshMs, are released all at
   * once too.
   */
  private async refresh(): Promise<void> {
    const { log, freshMs } = this.options;
    const lost: number[] = [];
    const takenBack: number[] = [];
    await Promise.all(
      [...this.held].map(async ([partition, lease]) => {
        const sentAt = this.now();
        let renewed: Renewal;
        try {
          renewed = await this.renew(partition, lease.revision);
        } catch (error) {
          // No new work is taken under it any more (isFresh), and another replica may take it soon: stop.
          if (this.now() - lease.refreshedAt < freshMs) return;
          log.warn({ partition, err: error }, "partition lease cannot be refreshed");
          lost.push(partition);
          return;
        }
        if (renewed === "lost") {
          log.warn({ partition }, "partition lease lost");
          lost.push(partition);
          return;
        }
        if (renewed.takenBack) takenBack.push(partition);
        this.held.set(partition, { revision: renewed.revision, refreshedAt: sentAt });
      }),
    );
    if (takenBack.length > 0)
      log.info(
        { partitions: takenBack.sort((a, b) => a - b) },
        "partition leases expired unclaimed; taken back",
      );
    for (const partition of lost) this.held.delete(partition);
    await Promise.all(lost.map((partition) => this.options.release(partition)));
  }

  /**
   * Writes the lease again; its new revision, or "lost" when another replica holds it. A lease that expired
   * (after a stall) and that no one took is taken back; one whose last write was ours (its answer lost) is
   * ours still.
   */
  private async renew(partition: number, revision: number): Promise<Renewal> {
    const { kv, replicaId } = this.options;
    const key = leaseKey(partition);
    const value = encodeJson(replicaId);
    try {
      return { revision: await kv.update(key, value, revision), takenBack: false };
    } catch {
      try {
        return { revision: await kv.create(key, value), takenBack: true };
      } catch (error) {
        // The store itself fails: what the update met is the same, and the caller decides by the lease's age.
        if (!(error instanceof KeyExistsError)) throw error;
      }
    }
    const current = await kv.get(key);
    if (current === undefined || decodeJson(current.value) !== replicaId) return "lost";
    // Our own earlier write, its answer lost: when it was written is unknown, so it is written again.
    return { revision: await kv.update(key, value, current.revision), takenBack: false };
  }

  private async giveBack(partition: number): Promise<void> {
    this.held.delete(partition);
    await this.options.release(partition);
    await this.options.kv.delete(leaseKey(partition));
  }

  /** Finishes the work in hand and gives every lease back, so other replicas take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopGauge?.();
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.ticking;
    await this.queued;
    await Promise.all(this.partitions().map((partition) => this.giveBack(partition)));
    await this.options.kv.delete(`replica.${keyToken(this.options.replicaId)}`);
  }
}

function leaseKey(partition: number): string {
  return `partition.${partition}`;
}
