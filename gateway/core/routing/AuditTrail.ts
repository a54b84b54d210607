/**
 * Publishes the audit trail to fedgate.v1.audit.<decision>. Records hold metadata only: ids, route,
 * decision, reason and a hash of the content, never the text.
 *
 * Records made in the same turn of the event loop (by the partitions working at once) are stored as one
 * AuditBatch: one JetStream write instead of one per decision, which is most of what the core adds on top
 * of forwarding. Each record() still resolves only once its batch is stored.
 */
import { createHash } from "node:crypto";
import type { AuditBatch, AuditRecord, NormalisedEvent } from "../../../schemas/types.js";
import type { Bus } from "../../platform/bus/Bus.js";
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
  records: AuditRecord[];
  settle: { resolve: () => void; reject: (error: unknown) => void }[];
}

/** Bounds one message's size; a fuller turn is split into several batches. */
const MAX_RECORDS = 256;

export class AuditTrail {
  private readonly pending = new Map<Decision, PendingBatch>();

  constructor(private readonly bus: Bus) {}

  /** Resolves once the record is stored. */
  record(record: AuditRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      let batch = this.pending.get(record.decision);
      if (batch === undefined) {
        batch = { records: [], settle: [] };
        this.pending.set(record.decision, batch);
        const decision = record.decision;
        setImmediate(() => this.flush(decision));
      }
      batch.records.push(record);
      batch.settle.push({ resolve, reject });
      if (batch.records.length >= MAX_RECORDS) this.flush(record.decision);
    });
  }

  private flush(decision: Decision): void {
    const batch = this.pending.get(decision);
    if (batch === undefined) return;
    this.pending.delete(decision);
    const message: AuditBatch = {
      specVersion: "1",
      records: batch.records as [AuditRecord, ...AuditRecord[]],
    };
    this.bus.publish(subjects.audit(decision), encodeJson(message)).then(
      () => batch.settle.forEach((s) => s.resolve()),
      (error: unknown) => batch.settle.forEach((s) => s.reject(error)),
    );
  }
}
