/** The chaos suite's arithmetic, on a stream written out by hand: what it calls lost, doubled, late. */
import { describe, expect, it } from "vitest";
import type { Network } from "./participants.js";
import type { Arrival, StreamRecord } from "./stream.js";
import { countStreams } from "./verdict.js";

function record(arrivals: Partial<Record<Network, [Network, number, number][]>>): StreamRecord {
  const toArrivals = (list: [Network, number, number][] = []): Arrival[] =>
    list.map(([from, seq, at]) => ({ from, seq, at, id: `${from}-${seq}-${at}` }));
  return {
    run: "test",
    // xmpp writes 1, 2, 3 at 0 s, 1 s, 2 s; the others write nothing.
    sent: new Map<Network, Map<number, number>>([
      [
        "xmpp",
        new Map([
          [1, 0],
          [2, 1000],
          [3, 2000],
        ]),
      ],
      ["matrix", new Map()],
      ["stashcat", new Map()],
    ]),
    arrivals: new Map([
      ["xmpp", toArrivals(arrivals.xmpp)],
      ["matrix", toArrivals(arrivals.matrix)],
      ["stashcat", toArrivals(arrivals.stashcat)],
    ]),
    faultStartedAt: 500,
    faultEndedAt: 1500,
    troubles: new Map(),
  };
}

describe("chaos verdict - counting at the far clients", () => {
  it("chaos verdict - every message once, in order, in normal time: nothing to report, recovered at once", () => {
    const verdict = countStreams(
      "none",
      record({
        matrix: [
          ["xmpp", 1, 300],
          ["xmpp", 2, 1300],
          ["xmpp", 3, 2300],
        ],
        stashcat: [
          ["xmpp", 1, 400],
          ["xmpp", 2, 1400],
          ["xmpp", 3, 2400],
        ],
      }),
    );
    expect(verdict).toMatchObject({
      sent: 3,
      expected: 6,
      arrived: 6,
      lost: 0,
      doubled: 0,
      outOfOrder: 0,
      recoverySeconds: 0,
      faultSeconds: 1,
      worstLatencySeconds: 0.4,
    });
  });

  it("chaos verdict - a copy twice, one overtaken, one missing: each counted, and a stream whose last message never came has not recovered", () => {
    const verdict = countStreams(
      "broken",
      record({
        matrix: [
          ["xmpp", 1, 300],
          ["xmpp", 3, 2300],
          ["xmpp", 2, 9000],
          ["xmpp", 2, 9100],
        ],
        stashcat: [
          ["xmpp", 1, 400],
          ["xmpp", 2, 1400],
        ],
      }),
    );
    expect(verdict).toMatchObject({ lost: 1, doubled: 1, outOfOrder: 1, recoverySeconds: undefined });
    const toMatrix = verdict.streams.find((s) => s.from === "xmpp" && s.to === "matrix");
    expect(toMatrix).toMatchObject({ lost: [], doubled: [2], outOfOrder: [2], recoverySeconds: 7.5 });
    const toStashcat = verdict.streams.find((s) => s.from === "xmpp" && s.to === "stashcat");
    expect(toStashcat).toMatchObject({ lost: [3], doubled: [], outOfOrder: [] });
  });

  it("chaos verdict - recovery lasts until the last message held up longer than 5 s arrives, not until the backlog first clears", () => {
    const verdict = countStreams(
      "two stalls",
      record({
        matrix: [
          ["xmpp", 1, 300],
          ["xmpp", 2, 1300],
          ["xmpp", 3, 30_000],
        ],
        stashcat: [
          ["xmpp", 1, 400],
          // Late, but within the 5 s a loaded machine may take: not held up.
          ["xmpp", 2, 5900],
          ["xmpp", 3, 6000],
        ],
      }),
    );
    expect(verdict.recoverySeconds).toBe(28.5);
    expect(verdict.streams.find((s) => s.to === "stashcat")?.recoverySeconds).toBe(0);
  });
});
