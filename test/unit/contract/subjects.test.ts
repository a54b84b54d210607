import { describe, expect, it } from "vitest";
import {
  fnv1a32,
  parseInboundSubject,
  parseOutboundSubject,
  PARTITIONS,
  partitionOf,
  subjects,
} from "../../../schemas/contract/subjects.js";

describe("subjects - the bus contract's names", () => {
  it("subjects - FNV-1a matches the published reference vectors", () => {
    // Reference values of 32-bit FNV-1a (Fowler/Noll/Vo test suite).
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
  });

  it("subjects - a conversation always maps to the same partition, within range", () => {
    const p = partitionOf("matrix", "tchap", "!room:tchap.localhost");
    expect(p).toBe(fnv1a32("matrix/tchap/!room:tchap.localhost") % PARTITIONS);
    expect(partitionOf("matrix", "tchap", "!room:tchap.localhost")).toBe(p);
    const seen = new Set(Array.from({ length: 400 }, (_, i) => partitionOf("xmpp", "bpol", `room${i}@muc`)));
    expect(seen.size).toBe(PARTITIONS);
  });

  it("subjects - inbound subjects round-trip through the parser", () => {
    const subject = subjects.inbound({
      network: "xmpp",
      instance: "bpol",
      conversation: "lage@conference.bpol",
    });
    expect(subject).toMatch(/^fedgate\.v1\.inbound\.xmpp\.bpol\.\d+$/);
    expect(parseInboundSubject(subject)).toEqual({
      network: "xmpp",
      instance: "bpol",
      partition: partitionOf("xmpp", "bpol", "lage@conference.bpol"),
    });
  });

  it("subjects - anything else is not an inbound subject", () => {
    expect(parseInboundSubject("fedgate.v1.outbound.xmpp.bpol")).toBeUndefined();
    expect(parseInboundSubject("fedgate.v1.inbound.xmpp.bpol.99")).toBeUndefined();
    expect(parseInboundSubject("fedgate.v2.inbound.xmpp.bpol.1")).toBeUndefined();
    expect(parseInboundSubject("fedgate.v1.inbound.xmpp.bpol.x")).toBeUndefined();
  });

  it("subjects - outbound subjects round-trip through the parser; nothing else is one", () => {
    expect(parseOutboundSubject(subjects.outbound("stashcat", "ni"))).toEqual({
      network: "stashcat",
      instance: "ni",
    });
    expect(
      parseOutboundSubject(subjects.inbound({ network: "x", instance: "y", conversation: "z" })),
    ).toBeUndefined();
    expect(parseOutboundSubject(subjects.deadLetter("stashcat-ni"))).toBeUndefined();
    expect(parseOutboundSubject("fedgate.v2.outbound.xmpp.bpol")).toBeUndefined();
    expect(parseOutboundSubject("fedgate.v1.outbound.xmpp.bpol.extra")).toBeUndefined();
  });
});
