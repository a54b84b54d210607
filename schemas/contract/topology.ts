/** The streams of the bus contract, and what each keeps. */
import type { StreamLimits } from "../types.js";
import { subjects } from "./subjects.js";

export type StreamName = "FEDGATE_INBOUND" | "FEDGATE_OUTBOUND" | "FEDGATE_AUDIT" | "FEDGATE_DEADLETTER";

export interface StreamSpec {
  name: StreamName;
  subjects: string[];
  /** Its limits in the config, nats.streams.<key> (schemas/config.schema.json, with the defaults). */
  limits: keyof StreamLimits;
  /**
   * When full: "new" refuses the publish (the publisher sees a transient error and retries, so nothing is
   * dropped unseen, and a full stream shows as back-pressure and in alerts); "old" drops the oldest.
   */
  discard: "new" | "old";
}

/** Larger than any event or delivery the schemas allow (a 64 KiB body, 128 KiB of HTML, 16 attachments). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export const streams: readonly StreamSpec[] = [
  { name: "FEDGATE_INBOUND", subjects: [subjects.inboundAll], limits: "inbound", discard: "new" },
  { name: "FEDGATE_OUTBOUND", subjects: [subjects.outboundAll], limits: "outbound", discard: "new" },
  // Audit is evidence: never dropped to make room.
  { name: "FEDGATE_AUDIT", subjects: [subjects.auditAll], limits: "audit", discard: "new" },
  // Dead letters are diagnostics: the newest are kept, so that a flood of refused input never stops bridging.
  { name: "FEDGATE_DEADLETTER", subjects: [subjects.deadLetterAll], limits: "deadLetter", discard: "old" },
];

export const buckets = {
  links: "fedgate_links",
  identities: "fedgate_identities",
  messages: "fedgate_messages",
  /** Per routed message: its author, effective marking, and which conversations hold it or were denied it. */
  deliveries: "fedgate_deliveries",
  /** Which core replica works on which inbound partition; entries expire. */
  leases: "fedgate_leases",
  /** One-time codes that let a conversation join a link, as digests; entries expire. */
  joinCodes: "fedgate_join_codes",
  /** Partner gateways' signed manifests, as verified: the newest version of each. */
  partners: "fedgate_partners",
  /** This gateway's and its partners' signed consent to each shared conversation. */
  consents: "fedgate_consents",
  /**
   * Deliveries of events this gateway's networks wrote in a conversation a partner gateway orders, held until
   * the hub returns each event in its order (gateway/core/routing/HeldDeliveries.ts).
   */
  held: "fedgate_held",
  /**
   * Each bridge instance's connection to its server, as it reports it (schemas/bridge-health.schema.json),
   * under <network>.<instance>; entries expire after BRIDGE_HEALTH_TTL_MS.
   */
  bridgeHealth: "fedgate_bridge_health",
} as const;

/**
 * How long a bridge's health report lasts unless written again: four of the default check intervals
 * (bridges.<network>.connectionCheck.intervalMs). A bridge writes at least every third of it, so an entry that
 * is gone means the bridge stopped reporting.
 */
export const BRIDGE_HEALTH_TTL_MS = 60_000;

/** The durable consumer on FEDGATE_OUTBOUND through which a bridge instance takes its deliveries. */
export function adapterConsumer(network: string, instance: string): string {
  return `fedgate-adapter-${network}-${instance}`;
}

/** A bridge instance's key in the bridge health bucket (network and instance are key-safe tokens). */
export function bridgeHealthKey(network: string, instance: string): string {
  return `${network}.${instance}`;
}

/**
 * The buckets that remember what became of a message, for as long as the message horizon
 * (gateway.messageHorizonDays): they are kept, and forget, together.
 */
export const horizonBuckets: readonly string[] = [buckets.messages, buckets.deliveries];
