/** The streams of the bus contract, and what each keeps. */
import { subjects } from "./subjects.js";

export type StreamName = "FEDGATE_INBOUND" | "FEDGATE_OUTBOUND" | "FEDGATE_AUDIT" | "FEDGATE_DEADLETTER";

export interface StreamSpec {
  name: StreamName;
  subjects: string[];
  /** Maximum age in milliseconds; 0 keeps messages until limits are hit. */
  maxAgeMs: number;
  /** Most bytes and messages the stream keeps: native input must not fill NATS's disk. */
  maxBytes: number;
  maxMsgs: number;
  /**
   * When full: "new" refuses the publish (the publisher sees a transient error and retries, so nothing is
   * dropped unseen, and a full stream shows as back-pressure and in alerts); "old" drops the oldest.
   */
  discard: "new" | "old";
}

const DAY = 24 * 60 * 60 * 1000;
const GiB = 1024 * 1024 * 1024;
/** Larger than any event or delivery the schemas allow (a 64 KiB body, 128 KiB of HTML, 16 attachments). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

export const streams: readonly StreamSpec[] = [
  {
    name: "FEDGATE_INBOUND",
    subjects: [subjects.inboundAll],
    maxAgeMs: 7 * DAY,
    maxBytes: 2 * GiB,
    maxMsgs: 5_000_000,
    discard: "new",
  },
  {
    name: "FEDGATE_OUTBOUND",
    subjects: [subjects.outboundAll],
    maxAgeMs: 7 * DAY,
    maxBytes: 4 * GiB,
    maxMsgs: 10_000_000,
    discard: "new",
  },
  // Audit is evidence: kept for a year unless an operator exports and trims it, and never dropped to make room.
  {
    name: "FEDGATE_AUDIT",
    subjects: [subjects.auditAll],
    maxAgeMs: 365 * DAY,
    maxBytes: 16 * GiB,
    maxMsgs: 50_000_000,
    discard: "new",
  },
  // Dead letters are diagnostics: the newest are kept, so that a flood of refused input never stops bridging.
  {
    name: "FEDGATE_DEADLETTER",
    subjects: [subjects.deadLetterAll],
    maxAgeMs: 30 * DAY,
    maxBytes: 1 * GiB,
    maxMsgs: 1_000_000,
    discard: "old",
  },
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
} as const;

/**
 * The buckets that remember what became of a message, for as long as the message horizon
 * (gateway.messageHorizonDays): they are kept, and forget, together.
 */
export const horizonBuckets: readonly string[] = [buckets.messages, buckets.deliveries];
