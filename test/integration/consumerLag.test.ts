/**
 * Consumer lag as /metrics reports it: what a durable consumer has not been given, and what it holds
 * unacknowledged, read from a real nats-server in the background, at most every 15 s.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../gateway/platform/log.js";
import { startTelemetry, stopTelemetry } from "../../gateway/platform/telemetry.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { eventually } from "../helpers/fixtures.js";
import { sample, scrapeThisProcess } from "../helpers/metricsText.js";
import { startNatsOrSkip } from "../helpers/nats.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(nats === undefined)("consumer lag - scraped from /metrics", () => {
  let bus: JetStreamBus;

  beforeAll(async () => {
    if (nats === undefined) return;
    startTelemetry({ serviceName: "fedgate-test" });
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await bus.ensureTopology();
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await bus.close();
    await nats.stop();
    await stopTelemetry();
  });

  it("consumer lag - a consumer stuck on its first of 5 messages: 4 not given yet, 1 unacknowledged", async () => {
    const subject = subjects.outbound("xmpp", "lag");
    let release: () => void = () => undefined;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    let handled = 0;
    const labels = { stream: "FEDGATE_OUTBOUND", consumer: "lag" };
    const subscription = await bus.consume(
      {
        stream: "FEDGATE_OUTBOUND",
        durable: "lag",
        filterSubject: subject,
        maxAckPending: 1,
        ackWaitMs: 60_000,
      },
      async () => {
        await stuck;
        handled++;
      },
      { origin: "test", log, maxAttempts: 3 },
    );
    for (let n = 0; n < 5; n++) await bus.publish(subject, Buffer.from(String(n)));
    // Nothing was read yet: the first collection reports nothing held and asks the server, for the next one.
    expect(sample(await scrapeThisProcess(), "fedgate_consumer_lag", labels)).toBe(0);
    const lagging = async (): Promise<string | undefined> => {
      await sleep(500);
      const text = await scrapeThisProcess();
      return sample(text, "fedgate_consumer_lag", labels) === 4 ? text : undefined;
    };
    const text = await eventually(lagging, 25_000, "the lag read again");
    expect(sample(text, "fedgate_consumer_ack_pending", labels)).toBe(1);
    release();
    await eventually(() => (handled === 5 ? true : undefined), 10_000, "the messages handled");
    await subscription.stop();
  }, 60_000);
});
