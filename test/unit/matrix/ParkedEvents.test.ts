import { describe, expect, it } from "vitest";
import { ParkedEvents } from "../../../bridges/matrix/crypto/ParkedEvents.js";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { createLogger } from "../../../gateway/platform/log.js";

function parked(maxEvents: number, maxAgeMs: number, store = new MemoryKeyValue(), maxPerSender = maxEvents) {
  const logs: string[] = [];
  const dropped: { raw: unknown; code: string }[] = [];
  let now = 1_000;
  const events = new ParkedEvents({
    maxEvents,
    maxPerSender,
    maxAgeMs,
    store,
    log: createLogger("debug", "test", { write: (line: string) => logs.push(line) }),
    now: () => now,
    onDropped: (raw, error) => {
      dropped.push({ raw, code: error.code });
      return Promise.resolve();
    },
  });
  return { events, logs, dropped, store, advance: (ms: number) => (now += ms) };
}

const event = (id: string, sender = "@claire:tchap.localhost") => ({
  event_id: `$${id}`,
  room_id: "!r:tchap.localhost",
  sender,
});
const key = (sessionId: string) => ({ roomId: "!r:tchap.localhost", sessionId });

/** Takes the events waiting for these keys, and forgets them as handled. */
async function take(events: ParkedEvents, keys: Parameters<ParkedEvents["take"]>[0]): Promise<unknown[]> {
  const taken = await events.take(keys);
  for (const { forget } of taken) await forget();
  return taken.map(({ raw }) => raw);
}

describe("Matrix events waiting for their keys", () => {
  it("Matrix parked events - come back for their key, in the order they came, once", async () => {
    const { events, store } = parked(10, 60_000);
    await events.park(key("s1"), event("a"));
    await events.park(key("s2"), event("b"));
    await events.park(key("s1"), event("c"));
    // The same event sent again by the homeserver waits once.
    await events.park(key("s1"), event("a"));
    expect(await take(events, [{ roomId: "!other:tchap.localhost", sessionId: "s1" }])).toEqual([]);
    expect(await take(events, [key("s2"), key("s1")])).toEqual([event("a"), event("b"), event("c")]);
    expect(await take(events, [key("s1")])).toEqual([]);
    expect(events.size).toBe(0);
    expect(await store.keys()).toEqual([]);
  });

  it("Matrix parked events - bounded in number and age; what is dropped is logged as undecryptable and handed on", async () => {
    const { events, logs, dropped, advance, store } = parked(2, 60_000);
    await events.park(key("s1"), event("a"));
    await events.park(key("s2"), event("b"));
    await events.park(key("s3"), event("c"));
    expect(events.size).toBe(2);
    expect(await store.keys()).toHaveLength(2);
    expect(logs.filter((l) => l.includes("FG_NATIVE_UNDECRYPTABLE") && l.includes("$a"))).toHaveLength(1);
    advance(60_001);
    expect(await take(events, [key("s2"), key("s3")])).toEqual([]);
    expect(logs.filter((l) => l.includes("its key never came"))).toHaveLength(2);
    // Each given up is handed on as the homeserver sent it, to be dead-lettered.
    expect(dropped).toEqual(
      [event("a"), event("b"), event("c")].map((raw) => ({ raw, code: "FG_NATIVE_UNDECRYPTABLE" })),
    );
    expect(events.size).toBe(0);
    expect(await store.keys()).toEqual([]);
  });

  it("Matrix parked events - an event larger than any Matrix event does not wait", async () => {
    const { events, logs, store } = parked(10, 60_000);
    await events.park(key("s1"), { ...event("big"), content: { ciphertext: "x".repeat(70_000) } });
    expect(events.size).toBe(0);
    expect(await store.keys()).toEqual([]);
    expect(logs.filter((l) => l.includes("FG_NATIVE_UNDECRYPTABLE") && l.includes("$big"))).toHaveLength(1);
  });

  it("Matrix parked events - still wait after a restart, in the order they came, within the same bounds", async () => {
    const before = parked(2, 60_000);
    await before.events.park(key("s1"), event("a"));
    before.advance(10);
    await before.events.park(key("s2"), event("b"));
    await before.events.park(key("s1"), event("c"));

    // A new bridge on the same bucket (the first bridge dropped "a" for its bound); it allows fewer still.
    const after = parked(1, 60_000, before.store);
    await after.events.load();
    expect(after.events.size).toBe(1);
    expect(after.logs.filter((l) => l.includes("FG_NATIVE_UNDECRYPTABLE") && l.includes("$b"))).toHaveLength(
      1,
    );
    // Taken but not yet forgotten: a bridge stopped while handling it finds it again.
    const taken = await after.events.take([key("s1"), key("s2")]);
    expect(taken.map(({ raw }) => raw)).toEqual([event("c")]);
    const again = parked(10, 60_000, before.store);
    await again.events.load();
    expect(again.events.size).toBe(1);
    for (const { forget } of taken) await forget();
    expect(await before.store.keys()).toEqual([]);

    const old = parked(10, 60_000, before.store);
    await old.events.park(key("s3"), event("d"));
    const late = parked(10, 60_000, before.store);
    late.advance(60_001);
    await late.events.load();
    expect(late.events.size).toBe(0);
    expect(late.logs.filter((l) => l.includes("its key never came") && l.includes("$d"))).toHaveLength(1);
    expect(await before.store.keys()).toEqual([]);
  });

  it("Matrix parked events - one given back after a failed handling waits again, before those after it", async () => {
    const { events, store } = parked(10, 60_000);
    await events.park(key("s1"), event("a"));
    await events.park(key("s2"), event("b"));
    await events.park(key("s1"), event("c"));
    expect(events.waitingFor()).toEqual([
      { key: key("s1"), first: event("a") },
      { key: key("s2"), first: event("b") },
    ]);
    const [a, c] = await events.take([key("s1")]);
    await a?.forget();
    // "c" failed: back where it was, and still in the bucket.
    c?.giveBack();
    c?.giveBack();
    expect(events.size).toBe(2);
    expect(await store.keys()).toHaveLength(2);
    expect(await take(events, [key("s1"), key("s2")])).toEqual([event("b"), event("c")]);
    expect(await store.keys()).toEqual([]);
  });

  it("Matrix parked events - one given up stays in the bucket until it has been handed on", async () => {
    const store = new MemoryKeyValue();
    let now = 1_000;
    const handedOn: unknown[] = [];
    let finishHandingOn = (): void => undefined;
    const events = new ParkedEvents({
      maxEvents: 10,
      maxPerSender: 10,
      maxAgeMs: 60_000,
      store,
      log: createLogger("silent"),
      now: () => now,
      // Handing on takes a while (the dead letter, the room's notice): a bridge may die meanwhile.
      onDropped: (raw) => {
        handedOn.push(raw);
        return new Promise((resolve) => {
          finishHandingOn = resolve;
        });
      },
    });
    await events.park(key("s1"), event("a"));
    now += 60_001;
    const giving = events.take([]);
    await eventuallyTrue(() => handedOn.length === 1);
    // A bridge that dies here finds it again at its next start, and hands it on then.
    expect(await store.keys()).toHaveLength(1);
    finishHandingOn();
    await giving;
    expect(await store.keys()).toEqual([]);
  });

  it("Matrix parked events - one whose key never comes is given up within its age, though nothing else happens", async () => {
    const { events, dropped, advance, store } = parked(10, 60_000);
    await events.park(key("s1"), event("a"));
    events.sweepEvery(20);
    try {
      advance(60_001);
      // No other event, no key: only the sweep sees its age.
      await eventuallyTrue(() => dropped.length === 1);
      expect(dropped).toEqual([{ raw: event("a"), code: "FG_NATIVE_UNDECRYPTABLE" }]);
      await eventuallyTrue(() => events.size === 0);
      expect(await store.keys()).toEqual([]);
    } finally {
      events.stop();
    }
  });

  it("Matrix parked events - one sender's events make room among their own, never push out another's", async () => {
    const { events, dropped } = parked(10, 60_000, new MemoryKeyValue(), 2);
    const spammer = "@spam:elsewhere.example";
    await events.park(key("s1"), event("claire-1"));
    for (const id of ["x1", "x2", "x3", "x4"]) await events.park(key(id), event(id, spammer));
    expect(dropped.map(({ raw }) => raw)).toEqual([event("x1", spammer), event("x2", spammer)]);
    expect(events.size).toBe(3);
    expect(await take(events, [key("s1")])).toEqual([event("claire-1")]);
  });
});

/** Resolves once `check` holds, within a second. */
async function eventuallyTrue(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
}
