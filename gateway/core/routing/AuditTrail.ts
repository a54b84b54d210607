/**
 * Publishes the audit trail to fedgate.v1.audit.<decision>. Records hold metadata only: ids, route,
 * decision, reason and a hash of the content, never the text.
 *
 * Records made in the same turn of the event loop (by the partitions working at once) are stored as one
 * AuditBatch: one JetStream write instead of one per decision, which is most of what the core adds on top
 * of forwarding. Each record() still resolves only once its batch is stored.
 *
 * Batches are stored one after the other, each naming the one stored before (AuditChain.ts): what piles up
 * meanwhile goes into the next batch. A batch that could not be stored leaves the chain where it was.
 */
import { createHash } from "node:crypto";
import type { AuditBatch, AuditRecord, NormalisedEvent } from "../../../schemas/types.js";
import type { Bus } from "../../platform/bus/Bus.js";
import { AuditChainWriter } from "./AuditChain.js";
import { type Decision, subjects } from "../../../schemas/contract/subjects.js";
import { encodeJson } from "../../platform/bus/KeyValueStore.js";

/** Each event's content hash, computed once for all the records of its decisions (one per target). */
const hashes = new WeakMap<NormalisedEvent, string>();

/** SHA-256 of the event's content as published: lets an auditor match a record to a message it holds. */
export function contentSha256(event: NormalisedEvent): string | undefined {
  if (event.content === undefined) return undefined;
  let hash = hashes.get(event);
  if (hash === undefined) {
    hash = createHash("sha256").update(JSON.stringify(event.content)).digest("hex");
    hashes.set(event, hash);
  }
  return hash;
}

interface PendingBatch {
  decision: Decision;
  records: AuditRecord[];
  settle: { resolve: () => void; reject: (error: unknown) => void }[];
}

/** Bounds one message's size; a fuller turn is split into several batches. */
const MAX_RECORDS = 256;

export class AuditTrail {
  /** Per decision, the batch records join until it is stored or full. */
  private readonly pending = new Map<Decision, PendingBatch>();
  /** Full batches, to be stored before the pending ones. */
  private readonly full: PendingBatch[] = [];
  private readonly chain: AuditChainWriter;
  private storing = false;

  /** `replicaId` names this core process in the chain it writes; with `key`, each batch carries its HMAC. */
  constructor(
    private readonly bus: Bus,
    replicaId: string,
    key?: Uint8Array,
  ) {
    this.chain = new AuditChainWriter(replicaId, key);
  }

  /** Resolves once the record is stored. */
  record(record: AuditRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      let batch = this.pending.get(record.decision);
      if (batch === undefined) {
        batch = { decision: record.decision, records: [], settle: [] };
        this.pending.set(record.decision, batch);
        // The rest of this turn's records join it first.
        setImmediate(() => void this.storeAll());
      }
      batch.records.push(record);
      batch.settle.push({ resolve, reject });
      if (batch.records.length >= MAX_RECORDS) {
        this.pending.delete(record.decision);
        this.full.push(batch);
      }
    });
  }

  /** Stores every batch waiting, one after the other; records made meanwhile wait for the next round. */
  private async storeAll(): Promise<void> {
    if (this.storing) return;
    this.storing = true;
    try {
      for (;;) {
        const batches = [...this.full.splice(0), ...this.pending.values()];
        this.pending.clear();
        if (batches.length === 0) return;
        for (const batch of batches) await this.store(batch);
      }
    } finally {
      this.storing = false;
    }
  }

  /** Stores one batch as the next link of the chain; a batch not stored leaves the chain as it was. */
  private async store(batch: PendingBatch): Promise<void> {
    const message: AuditBatch = {
      specVersion: "1",
      records: batch.records as [AuditRecord, ...AuditRecord[]],
      chain: this.chain.next(batch.records),
    };
    const bytes = encodeJson(message);
    try {
      await this.bus.publish(subjects.audit(batch.decision), bytes);
    } catch (error) {
      batch.settle.forEach((s) => s.reject(error));
      return;
    }
    this.chain.stored(bytes);
    batch.settle.forEach((s) => s.resolve());
  }
}
