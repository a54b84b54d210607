import { describe, expect, it } from "vitest";
import { ParkedEvents } from "../../../bridges/matrix/crypto/ParkedEvents.js";
import { createLogger } from "../../../gateway/platform/log.js";

function parked(maxEvents: number, maxAgeMs: number) {
  const logs: string[] = [];
  let now = 1_000;
  const events = new ParkedEvents({
    maxEvents,
    maxAgeMs,
    log: createLogger("debug", "test", { write: (line: string) => logs.push(line) }),
    now: () => now,
  });
  return { events, logs, advance: (ms: number) => (now += ms) };
}

const event = (id: string) => ({ event_id: `$${id}`, room_id: "!r:tchap.localhost" });
const key = (sessionId: string) => ({ roomId: "!r:tchap.localhost", sessionId });

describe("Matrix events waiting for their keys", () => {
  it("Matrix parked events - come back for their key, in the order they came, once", () => {
    const { events } = parked(10, 60_000);
    events.park(key("s1"), event("a"));
    events.park(key("s2"), event("b"));
    events.park(key("s1"), event("c"));
    expect(events.take([{ roomId: "!other:tchap.localhost", sessionId: "s1" }])).toEqual([]);
    expect(events.take([key("s2"), key("s1")])).toEqual([event("a"), event("b"), event("c")]);
    expect(events.take([key("s1")])).toEqual([]);
    expect(events.size).toBe(0);
  });

  it("Matrix parked events - bounded in number and age; what is dropped is logged as undecryptable", () => {
    const { events, logs, advance } = parked(2, 60_000);
    events.park(key("s1"), event("a"));
    events.park(key("s2"), event("b"));
    events.park(key("s3"), event("c"));
    expect(events.size).toBe(2);
    expect(logs.filter((l) => l.includes("FG_NATIVE_UNDECRYPTABLE") && l.includes("$a"))).toHaveLength(1);
    advance(60_001);
    expect(events.take([key("s2"), key("s3")])).toEqual([]);
    expect(logs.filter((l) => l.includes("its key never came"))).toHaveLength(2);
    expect(events.size).toBe(0);
  });
});
