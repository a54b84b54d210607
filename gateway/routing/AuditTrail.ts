/**
 * Publishes one audit record per decision to fedgate.v1.audit.<decision>. Records hold metadata only:
 * ids, route, decision, reason and a hash of the content, never the text.
 */
import { createHash } from "node:crypto";
import type { AuditRecord, NormalisedEvent } from "../../schemas/types.js";
import type { Bus } from "../bus/Bus.js";
import { subjects } from "../contract/subjects.js";
import { encodeJson } from "../stores/KeyValueStore.js";
import { conversationKey } from "../stores/LinkStore.js";

/** SHA-256 of the event's content as published: lets an auditor match a record to a message it holds. */
export function contentSha256(event: NormalisedEvent): string | undefined {
  if (event.content === undefined) return undefined;
  return createHash("sha256").update(JSON.stringify(event.content)).digest("hex");
}

export class AuditTrail {
  constructor(private readonly bus: Bus) {}

  /** Resolves once the record is stored; a re-processed event's record is stored once. */
  async record(record: AuditRecord): Promise<void> {
    const where = record.target === undefined ? "source" : conversationKey(record.target);
    await this.bus.publish(subjects.audit(record.decision), encodeJson(record), {
      msgId: `audit.${record.eventId}.${where}`,
    });
  }
}
