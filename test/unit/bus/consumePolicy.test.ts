import { describe, expect, it } from "vitest";
import type { DeadLetter } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { subjects } from "../../../schemas/contract/subjects.js";

const log = createLogger("silent");
const spec = {
  stream: "FEDGATE_OUTBOUND",
  durable: "t",
  filterSubject: subjects.outboundAll,
  maxAckPending: 1,
  ackWaitMs: 1000,
} as const;

function letters(bus: MemoryBus): DeadLetter[] {
  return bus
    .messages(subjects.deadLetterAll)
    .map((m) => JSON.parse(Buffer.from(m.data).toString()) as DeadLetter);
}

describe("consume policy - what happens when a handler fails", () => {
  it("consume policy - a transient failure is retried in place and then succeeds, in order", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const seen: string[] = [];
    let failures = 2;
    await bus.consume(
      spec,
      (m) => {
        const text = Buffer.from(m.data).toString();
        if (text === "a" && failures-- > 0) throw new TransientError("FG_BUS_PUBLISH_FAILED", "briefly down");
        seen.push(text);
        return Promise.resolve();
      },
      { origin: "test", log, maxAttempts: 5, backoffMs: () => 1 },
    );
    await bus.publish(subjects.outbound("xmpp", "bpol"), Buffer.from("a"));
    await bus.publish(subjects.outbound("xmpp", "bpol"), Buffer.from("b"));
    await bus.settled();
    expect(seen).toEqual(["a", "b"]);
    expect(letters(bus)).toHaveLength(0);
  });

  it("consume policy - a permanent failure is dead-lettered with its code and the consumer goes on", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const seen: string[] = [];
    await bus.consume(
      spec,
      (m) => {
        const text = Buffer.from(m.data).toString();
        if (text === "bad") throw new PermanentError("FG_EVENT_INVALID", "bad input");
        seen.push(text);
        return Promise.resolve();
      },
      { origin: "test", log, maxAttempts: 5, backoffMs: () => 1 },
    );
    await bus.publish(subjects.outbound("xmpp", "bpol"), Buffer.from("bad"));
    await bus.publish(subjects.outbound("xmpp", "bpol"), Buffer.from("good"));
    await bus.settled();
    expect(seen).toEqual(["good"]);
    const [letter] = letters(bus);
    expect(letter).toMatchObject({
      origin: "test",
      reason: { code: "FG_EVENT_INVALID", message: "bad input" },
      payload: "bad",
    });
    expect(bus.messages(subjects.deadLetter("test"))).toHaveLength(1);
  });

  it("consume policy - a transient failure that outlasts every attempt is dead-lettered", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    let attempts = 0;
    await bus.consume(
      spec,
      () => {
        attempts++;
        return Promise.reject(new TransientError("FG_STORE_FAILED", "store down"));
      },
      { origin: "test", log, maxAttempts: 3, backoffMs: () => 1 },
    );
    await bus.publish(subjects.outbound("xmpp", "bpol"), new Uint8Array([0xff, 0xfe]));
    await bus.settled();
    expect(attempts).toBe(3);
    const [letter] = letters(bus);
    expect(letter?.reason.code).toBe("FG_STORE_FAILED");
    expect(letter?.payloadEncoding).toBe("base64");
    expect(Buffer.from(letter?.payload ?? "", "base64")).toEqual(Buffer.from([0xff, 0xfe]));
  });

  it("consume policy - a consumer stopping while its handler keeps failing transiently stops, and leaves the message for later", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    let attempts = 0;
    const subscription = await bus.consume(
      spec,
      () => {
        attempts++;
        throw new TransientError("FG_PEER_UNAVAILABLE", "partner away");
      },
      { origin: "test", log, maxAttempts: Number.POSITIVE_INFINITY, backoffMs: () => 20 },
    );
    await bus.publish(subjects.outbound("xmpp", "bpol"), Buffer.from("waits"));
    while (attempts < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    const stopped = await Promise.race([
      subscription.stop().then(() => "stopped"),
      new Promise((resolve) => setTimeout(() => resolve("still retrying"), 2000)),
    ]);
    expect(stopped).toBe("stopped");
    expect(letters(bus)).toHaveLength(0);
    // Not settled: the next consumer of the durable gets it.
    const seen: string[] = [];
    await bus.consume(
      spec,
      (m) => {
        seen.push(Buffer.from(m.data).toString());
        return Promise.resolve();
      },
      { origin: "test", log, maxAttempts: 5 },
    );
    await bus.settled();
    expect(seen).toEqual(["waits"]);
  });
});
