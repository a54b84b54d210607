/**
 * Which core replica works on which inbound partition. A replica works only on partitions it holds a lease
 * for, so it may handle many events of one partition at once (one per conversation) without another replica
 * racing it on the same conversation.
 *
 * Leases live in a KV bucket whose entries expire ttlMs after their last write. Every ttlMs/3 each replica
 * writes a heartbeat, refreshes its leases by compare-and-set, gives back leases above its fair share
 * (partitions / live replicas) once their work is done, and claims free ones. A replica that died leaves its
 * leases to expire; ttlMs is longer than the ack wait, so by the time another replica takes a partition over,
 * everything the dead one held is due for redelivery and arrives before newer events.
 */
import type { Logger } from "pino";
import { fnv1a32 } from "../contract/subjects.js";
import { encodeJson, KeyExistsError, keyToken, type KeyValueStore } from "../stores/KeyValueStore.js";

export interface PartitionLeasesOptions {
  /** A bucket created with a TTL of ttlMs. */
  kv: KeyValueStore;
  replicaId: string;
  partitions: number;
  ttlMs: number;
  log: Logger;
  /** Starts work on a partition whose lease was just taken. */
  acquire(partition: number): Promise<void>;
  /** Stops work on a partition and resolves once none of its events is in work. */
  release(partition: number): Promise<void>;
}

interface Lease {
  revision: number;
  refreshedAt: number;
}

export class PartitionLeases {
  private readonly held = new Map<number, Lease>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: PartitionLeasesOptions) {}

  get intervalMs(): number {
    return Math.max(Math.floor(this.options.ttlMs / 3), 50);
  }

  /** The partitions this replica works on now. */
  partitions(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /** Takes a first share of the partitions, then keeps the share fair as replicas come and go. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
  }

  /** Runs one round of heartbeat, refresh, give-back and claim; rounds never overlap. */
  tick(): Promise<void> {
    this.ticking ??= this.round()
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
    for (let i = 0; i < partitions && this.held.size < share; i++) {
      const partition = (offset + i) % partitions;
      if (this.held.has(partition)) continue;
      let revision: number;
      try {
        revision = await kv.create(leaseKey(partition), encodeJson(replicaId));
      } catch (error) {
        if (error instanceof KeyExistsError) continue;
        throw error;
      }
      this.held.set(partition, { revision, refreshedAt: Date.now() });
      try {
        await this.options.acquire(partition);
      } catch (error) {
        log.warn({ partition, err: error }, "cannot start work on a partition; giving its lease back");
        await this.giveBack(partition);
      }
    }
    if (this.held.size !== before) {
      log.info({ replicaId, held: this.held.size, live, share }, "partition leases changed");
    }
  }

  private async refresh(): Promise<void> {
    const { kv, replicaId, ttlMs, log } = this.options;
    for (const [partition, lease] of [...this.held]) {
      try {
        const revision = await kv.update(leaseKey(partition), encodeJson(replicaId), lease.revision);
        this.held.set(partition, { revision, refreshedAt: Date.now() });
      } catch (error) {
        const lost = error instanceof KeyExistsError;
        // Unable to refresh for most of the TTL: another replica may take it soon, so stop before it can.
        const expiring = Date.now() - lease.refreshedAt > ttlMs - this.intervalMs;
        if (lost || expiring) {
          log.warn(
            { partition, err: error },
            lost ? "partition lease lost" : "partition lease cannot be refreshed",
          );
          this.held.delete(partition);
          await this.options.release(partition);
        }
      }
    }
  }

  private async giveBack(partition: number): Promise<void> {
    this.held.delete(partition);
    await this.options.release(partition);
    await this.options.kv.delete(leaseKey(partition));
  }

  /** Finishes the work in hand and gives every lease back, so other replicas take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.ticking;
    await Promise.all(this.partitions().map((partition) => this.giveBack(partition)));
    await this.options.kv.delete(`replica.${keyToken(this.options.replicaId)}`);
  }
}

function leaseKey(partition: number): string {
  return `partition.${partition}`;
}
