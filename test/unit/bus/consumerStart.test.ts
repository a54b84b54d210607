import { describe, expect, it } from "vitest";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import type { ConsumerSpec } from "../../../gateway/platform/bus/Bus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { subjects } from "../../../schemas/contract/subjects.js";

const log = createLogger("silent");

/** What a consumer created after "old" was stored, then told of "new", is handed. */
async function handedTo(from: ConsumerSpec["from"]): Promise<string[]> {
  const bus = new MemoryBus();
  await bus.ensureTopology();
  await bus.publish(subjects.deadLetter("xmpp-bpol"), Buffer.from("old"));
  const seen: string[] = [];
  const subscription = await bus.consume(
    {
      stream: "FEDGATE_DEADLETTER",
      durable: "t",
      filterSubject: subjects.deadLetterAll,
      maxAckPending: 1,
      ackWaitMs: 1000,
      ...(from === undefined ? {} : { from }),
    },
    (m) => {
      seen.push(Buffer.from(m.data).toString());
      return Promise.resolve();
    },
    { origin: "test", log, maxAttempts: 1 },
  );
  await bus.publish(subjects.deadLetter("xmpp-bpol"), Buffer.from("new"));
  await bus.settled();
  await subscription.stop();
  return seen;
}

describe("consumer start - where a new durable consumer begins", () => {
  it("consumer start - by default, with every message the stream holds", async () => {
    expect(await handedTo(undefined)).toEqual(["old", "new"]);
  });

  it('consumer start - with from "new", only with what is stored after it was created', async () => {
    expect(await handedTo("new")).toEqual(["new"]);
  });
});
