import { describe, expect, it } from "vitest";
import type { AuditBatch } from "../../../schemas/types.js";
import { AuditChainVerifier, AuditChainWriter } from "../../../gateway/core/routing/AuditChain.js";

const encode = (batch: AuditBatch): Uint8Array => new TextEncoder().encode(JSON.stringify(batch));
const parse = (bytes: Uint8Array): AuditBatch => JSON.parse(new TextDecoder().decode(bytes)) as AuditBatch;

/** `count` batches as one writer stores them, one record each. */
function chain(count: number, writer = new AuditChainWriter("core-0/1")): Uint8Array[] {
  return Array.from({ length: count }, (_, n) => {
    const bytes = encode({
      specVersion: "1",
      records: [
        {
          specVersion: "1",
          eventId: `event-${String(n)}`,
          eventType: "message.created",
          decision: "deny",
          reason: "marking-above-route",
          source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol.example" },
          decidedAt: "2026-12-07T12:00:00.000Z",
        },
      ],
      chain: writer.next(),
    });
    writer.stored(bytes);
    return bytes;
  });
}

function verify(stored: Uint8Array[]): ReturnType<AuditChainVerifier["result"]> {
  const verifier = new AuditChainVerifier();
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
});
