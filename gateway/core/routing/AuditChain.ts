/**
 * The audit trail's chain: each batch a core process stores names, by hash, the one it stored before
 * (AuditChainLink in decision.schema.json). A batch edited, removed or inserted in the stream then breaks the
 * chain of its writer, and `fedgate audit verify` names where. With gateway.auditKey each link also carries an
 * HMAC of the batch under a key only the core holds, so a rewrite that recomputes every later hash is found
 * too; without it the hashes are unkeyed and such a rewrite is not. Never shown: batches cut off at the end of
 * a writer's chain, and batches of adapters, which are not chained.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { AuditBatch, AuditChainLink, AuditRecord } from "../../../schemas/types.js";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The HMAC a link carries: over where the batch stands in its chain and its records, as serialised. */
function macOf(key: Uint8Array, link: Omit<AuditChainLink, "mac">, records: readonly AuditRecord[]): string {
  return createHmac("sha256", key)
    .update(`${link.writer}\n${String(link.seq)}\n${link.previous ?? ""}\n${JSON.stringify(records)}`)
    .digest("hex");
}

/** The writing end: the link the next batch carries, moved on only once a batch is stored. */
export class AuditChainWriter {
  readonly writer: string;
  private seq = 1;
  private previous: string | undefined;

  /** With `key` (gateway.auditKey), each link carries an HMAC of its batch. */
  constructor(
    replicaId: string,
    private readonly key?: Uint8Array,
  ) {
    this.writer = `${replicaId}/${randomBytes(6).toString("hex")}`;
  }

  /** The link of the next batch, which holds `records`. */
  next(records: readonly AuditRecord[]): AuditChainLink {
    const link = {
      writer: this.writer,
      seq: this.seq,
      ...(this.previous === undefined ? {} : { previous: this.previous }),
    };
    return this.key === undefined ? link : { ...link, mac: macOf(this.key, link, records) };
  }

  /** The batch carrying next() is stored as `bytes`: the one after it names them. */
  stored(bytes: Uint8Array): void {
    this.seq++;
    this.previous = sha256Hex(bytes);
  }
}

/** A place where the chain does not hold. */
export interface ChainBreak {
  streamSeq: number;
  writer?: string;
  problem: string;
}

export interface ChainReport {
  batches: number;
  records: number;
  writers: number;
  /** Batches without a chain link (written by adapters). */
  unchained: number;
  breaks: ChainBreak[];
}

/**
 * Checks stored audit messages, in stream order. A writer whose first batch in the range is not its first
 * (seq 1) is taken up where the range begins; from then on each of its batches must follow the one before.
 */
export class AuditChainVerifier {
  private readonly last = new Map<string, { seq: number; hash: string }>();
  private readonly report: ChainReport = { batches: 0, records: 0, writers: 0, unchained: 0, breaks: [] };

  /** With `key` (the core's gateway.auditKey), every chained batch must carry its HMAC under it. */
  constructor(private readonly key?: Uint8Array) {}

  add(streamSeq: number, bytes: Uint8Array, parse: (bytes: Uint8Array) => AuditBatch): void {
    let batch: AuditBatch;
    try {
      batch = parse(bytes);
    } catch (error) {
      this.report.breaks.push({
        streamSeq,
        problem: `not an audit batch: ${error instanceof Error ? error.message : String(error)}`,
      });
      return;
    }
    this.report.batches++;
    this.report.records += batch.records.length;
    const link = batch.chain;
    if (link === undefined) {
      this.report.unchained++;
      return;
    }
    const before = this.last.get(link.writer);
    if (before === undefined) this.report.writers++;
    const problem = this.problemOf(link, before) ?? this.macProblem(link, batch.records);
    if (problem !== undefined) this.report.breaks.push({ streamSeq, writer: link.writer, problem });
    this.last.set(link.writer, { seq: link.seq, hash: sha256Hex(bytes) });
  }

  private problemOf(
    link: AuditChainLink,
    before: { seq: number; hash: string } | undefined,
  ): string | undefined {
    if (before === undefined)
      return link.seq === 1 && link.previous !== undefined
        ? "a first batch that names a previous one"
        : undefined;
    if (link.seq !== before.seq + 1)
      return `batch ${String(link.seq)} follows batch ${String(before.seq)}: ${link.seq <= before.seq ? "repeated or inserted" : "batches are missing"}`;
    if (link.previous !== before.hash)
      return `batch ${String(link.seq)} names a previous batch other than the one stored before it: edited or replaced`;
    return undefined;
  }

  private macProblem(link: AuditChainLink, records: readonly AuditRecord[]): string | undefined {
    if (this.key === undefined) return undefined;
    if (link.mac === undefined) return `batch ${String(link.seq)} carries no HMAC: written without the key`;
    const { mac, ...rest } = link;
    const expected = Buffer.from(macOf(this.key, rest, records), "hex");
    if (!timingSafeEqual(expected, Buffer.from(mac, "hex")))
      return `batch ${String(link.seq)}'s HMAC does not match: edited, or written with another key`;
    return undefined;
  }

  result(): ChainReport {
    return this.report;
  }
}
