/** The streams of the bus contract, and what each keeps. */
import { subjects } from "../contract/subjects.js";

export type StreamName = "FEDGATE_INBOUND" | "FEDGATE_OUTBOUND" | "FEDGATE_AUDIT" | "FEDGATE_DEADLETTER";

export interface StreamSpec {
  name: StreamName;
  subjects: string[];
  /** Maximum age in milliseconds; 0 keeps messages until limits are hit. */
  maxAgeMs: number;
}

const DAY = 24 * 60 * 60 * 1000;

export const streams: readonly StreamSpec[] = [
  { name: "FEDGATE_INBOUND", subjects: [subjects.inboundAll], maxAgeMs: 7 * DAY },
  { name: "FEDGATE_OUTBOUND", subjects: [subjects.outboundAll], maxAgeMs: 7 * DAY },
  // Audit is evidence: kept for a year unless an operator exports and trims it.
  { name: "FEDGATE_AUDIT", subjects: [subjects.auditAll], maxAgeMs: 365 * DAY },
  { name: "FEDGATE_DEADLETTER", subjects: [subjects.deadLetterAll], maxAgeMs: 30 * DAY },
];

export const buckets = {
  links: "fedgate_links",
  identities: "fedgate_identities",
  messages: "fedgate_messages",
  /** Which core replica works on which inbound partition; entries expire. */
  leases: "fedgate_leases",
  /** One-time codes that let a conversation join a link, as digests; entries expire. */
  joinCodes: "fedgate_join_codes",
} as const;
