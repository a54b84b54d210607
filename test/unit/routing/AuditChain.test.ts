import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { AuditBatch } from "../../../schemas/types.js";
import { AuditChainVerifier, AuditChainWriter } from "../../../gateway/core/routing/AuditChain.js";

const encode = (batch: AuditBatch): Uint8Array => new TextEncoder().encode(JSON.stringify(batch));
const parse = (bytes: Uint8Array): AuditBatch => JSON.parse(new TextDecoder().decode(bytes)) as AuditBatch;

/** `count` batches as one writer stores them, one record each. */
function chain(count: number, writer = new AuditChainWriter("core-0/1")): Uint8Array[] {
  return Array.from({ length: count }, (_, n) => {
    const records: AuditBatch["records"] = [
      {
        specVersion: "1",
        eventId: `event-${String(n)}`,
        eventType: "message.created",
        decision: "deny",
        reason: "marking-above-route",
        source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol.example" },
        decidedAt: "2026-12-07T12:00:00.000Z",
      },
    ];
    const bytes = encode({ specVersion: "1", records, chain: writer.next(records) });
    writer.stored(bytes);
    return bytes;
  });
}

function verify(stored: Uint8Array[], key?: Uint8Array): ReturnType<AuditChainVerifier["result"]> {
  const verifier = new AuditChainVerifier(key);
  stored.forEach((bytes, i) => verifier.add(i + 1, bytes, parse));
  return verifier.result();
}

describe("AuditChain - each batch names the one its writer stored before", () => {
  it("AuditChain - two writers' chains, interleaved as the stream holds them, verify", () => {
    const [a, b] = [chain(5), chain(5, new AuditChainWriter("core-1/1"))];
    const report = verify(a.flatMap((bytes, i) => [bytes, b[i] ?? bytes]));
    expect(report).toMatchObject({ batches: 10, records: 10, writers: 2, breaks: [] });
  });

  it("AuditChain - a batch edited in place, removed, inserted or repeated breaks the chain right after or at it", () => {
    const stored = chain(6);
    const edited = [...stored];
    edited[2] = encode({
      ...parse(stored[2] ?? new Uint8Array()),
      records: parse(stored[3] ?? new Uint8Array()).records,
    });
    expect(verify(edited).breaks.map((b) => b.streamSeq)).toEqual([4]);
    expect(verify([...stored.slice(0, 2), ...stored.slice(3)]).breaks.map((b) => b.streamSeq)).toEqual([3]);
    const forged = encode({ ...parse(stored[1] ?? new Uint8Array()) });
    expect(verify([...stored.slice(0, 3), forged, ...stored.slice(3)]).breaks[0]?.streamSeq).toBe(4);
    expect(verify([...stored, stored[5] ?? new Uint8Array()]).breaks[0]?.problem).toMatch(
      /repeated or inserted/,
    );
  });

  it("AuditChain - a range that starts mid-chain is taken up where it starts; adapters' batches are counted apart", () => {
    const stored = chain(6).slice(3);
    const unchained = encode({ ...parse(stored[0] ?? new Uint8Array()), chain: undefined });
    expect(verify([...stored, unchained])).toMatchObject({
      batches: 4,
      writers: 1,
      unchained: 1,
      breaks: [],
    });
  });

  it("AuditChain - with the core's key, a rewrite that recomputes every later hash is still found", () => {
    const key = new TextEncoder().encode("only the core knows this");
    const stored = chain(5, new AuditChainWriter("core-0/1", key));
    expect(verify(stored, key).breaks).toEqual([]);
    // Someone with write access rewrites batch 3 and re-chains everything after it, without the key.
    const rewritten = stored.map((bytes, i) => {
      const batch = parse(bytes);
      if (i === 2) batch.records[0].reason = "allowed";
      return batch;
    });
    let previous: string | undefined;
    const forged = rewritten.map((batch) => {
      const chainLink = batch.chain;
      if (chainLink === undefined) throw new Error("unchained");
      const bytes = encode({
        ...batch,
        chain: { ...chainLink, ...(previous === undefined ? {} : { previous }) },
      });
      previous = createHash("sha256").update(bytes).digest("hex");
      return bytes;
    });
    // Unkeyed, the forged chain holds; with the key, the first rewritten batch is named.
    expect(verify(forged).breaks).toEqual([]);
    const [found] = verify(forged, key).breaks;
    expect(found?.streamSeq).toBe(3);
    expect(found?.problem).toMatch(/HMAC does not match/);
    expect(verify(chain(2), key).breaks[0]?.problem).toMatch(/no HMAC/);
  });
});
