/**
 * The bus contract's subject names. This module is the only place that builds or parses them.
 *
 *   fedgate.v1.inbound.<network>.<instance>.<partition>   adapters → core
 *   fedgate.v1.outbound.<network>.<instance>              core → adapters
 *   fedgate.v1.audit.<deliver|deny|unsupported>            core, adapters → auditors
 *   fedgate.v1.deadletter.<origin>                         anyone → operators
 *   fedgate.v1.federation.<from>.<to>.<event|receipt|grant>   gateway <from> → partner gateway <to>
 *
 * The partition token keeps one conversation's events in order while several core replicas share the work:
 * each partition is consumed one event at a time, and all events of a conversation hash to one partition.
 */

import type { AuditRecord } from "../types.js";

const ROOT = "fedgate.v1";

/**
 * The network name of a partner gateway: to the core, a partner is one more network, whose instance is the
 * partner's gateway id and whose conversations are the ones the two gateways share.
 */
export const FEDERATION_NETWORK = "federation";

/** Fixed by contract v1: every adapter must hash conversations to the same partitions as the core. */
export const PARTITIONS = 64;

/** What an audit record says happened: the core's deliver or deny, or an adapter's unsupported. */
export type Decision = AuditRecord["decision"];

/** FNV-1a (32 bit) over the UTF-8 bytes: simple enough to reimplement in any adapter's language. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The partition of a conversation: fnv1a32("<network>/<instance>/<conversation>") mod 16. */
export function partitionOf(network: string, instance: string, conversation: string): number {
  return fnv1a32(`${network}/${instance}/${conversation}`) % PARTITIONS;
}

export const subjects = {
  inbound(source: { network: string; instance: string; conversation: string }): string {
    const partition = partitionOf(source.network, source.instance, source.conversation);
    return `${ROOT}.inbound.${source.network}.${source.instance}.${partition}`;
  },
  /** Every network's inbound events of one partition: what one core consumer reads. */
  inboundPartition(partition: number): string {
    return `${ROOT}.inbound.*.*.${partition}`;
  },
  inboundAll: `${ROOT}.inbound.>`,
  outbound(network: string, instance: string): string {
    return `${ROOT}.outbound.${network}.${instance}`;
  },
  outboundAll: `${ROOT}.outbound.>`,
  audit(decision: Decision): string {
    return `${ROOT}.audit.${decision}`;
  },
  auditAll: `${ROOT}.audit.>`,
  deadLetter(origin: string): string {
    return `${ROOT}.deadletter.${origin}`;
  },
  deadLetterAll: `${ROOT}.deadletter.>`,
  /**
   * Everything gateway `from` sends partner gateway `to`: the only subjects a federation link carries
   * (see gateway/core/federation/federationAccounts.ts).
   */
  federation(from: string, to: string): string {
    return `${ROOT}.federation.${from}.${to}.>`;
  },
  /** An event `from` releases to `to` (a FederatedEvent), the receipt `to` answers it with, a consent grant. */
  federationMessage(from: string, to: string, kind: "event" | "receipt" | "grant"): string {
    return `${ROOT}.federation.${from}.${to}.${kind}`;
  },
} as const;

/** Parses an outbound subject into the network instance it is for; undefined when the subject is not one. */
export function parseOutboundSubject(subject: string): { network: string; instance: string } | undefined {
  const parts = subject.split(".");
  if (parts.length !== 5 || `${parts[0]}.${parts[1]}` !== ROOT || parts[2] !== "outbound") return undefined;
  const [, , , network, instance] = parts as [string, string, string, string, string];
  return { network, instance };
}

export interface InboundSubject {
  network: string;
  instance: string;
  partition: number;
}

/** Parses an inbound subject; undefined when the subject is not one. */
export function parseInboundSubject(subject: string): InboundSubject | undefined {
  const parts = subject.split(".");
  if (parts.length !== 6 || `${parts[0]}.${parts[1]}` !== ROOT || parts[2] !== "inbound") return undefined;
  const [, , , network, instance, partitionText] = parts as [string, string, string, string, string, string];
  const partition = Number(partitionText);
  if (!Number.isInteger(partition) || partition < 0 || partition >= PARTITIONS) return undefined;
  return { network, instance, partition };
}
