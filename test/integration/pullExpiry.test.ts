/**
 * A pull that the server lets expire without a word must not hold up its consumer. nats-server before 2.9.16
 * (Debian 12 ships 2.9.10) drops a pull whose expiry comes while it is handing out a run of messages, without
 * the "408 Request Timeout" that ends it (nats-server df282a2); the client then notices only when two idle
 * heartbeats are missing, and the consumer's next message waits about two seconds.
 *
 * Each round holds a consumer's first messages until just before its pull expires, then lets them all be
 * acknowledged at once: the server answers with a run of messages across the pull's expiry.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { PULL_WINDOW_MS } from "../../gateway/platform/bus/Bus.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { createLogger } from "../../gateway/platform/log.js";
import { eventually } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
/** Rounds run this many at a time, each releasing at another moment before its pull expires. */
const AT_ONCE = 12;
const ROUNDS = 4 * AT_ONCE;
/** Messages held per round, and how many wait behind them: fewer than one pull asks for (1024). */
const HELD = 400;
const BACKLOG = 2 * HELD;
/**
 * When a round lets its held messages go, before its pull expires: the acknowledgements must reach the server
 * just as the pull expires, after the client has worked through the release, which takes a few milliseconds
 * more or less. The rounds spread over that span.
 */
const releaseBeforeExpiryMs = (n: number): number => 2 + 3 * (n % AT_ONCE);
/**
 * Longer than a round may take after the release: the client works through thousands of messages at once,
 * for up to a few hundred milliseconds; two missed heartbeats take two to three seconds.
 */
const LATE_MS = 1000;

describe.skipIf(nats === undefined)("JetStreamBus - pulls the server ends without a word", () => {
  let bus: JetStreamBus;
  let nc: NatsConnection;

  beforeAll(async () => {
    if (nats === undefined) return;
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await bus.ensureTopology();
    nc = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await nc.close();
    await bus.close();
    await nats.stop();
  });

  /** Runs one round; resolves with how long after the release the last message was handled. */
  async function round(n: number): Promise<number> {
    const durable = `pull-expiry-${n}`;
    const subject = subjects.outbound("xmpp", durable);
    for (let m = 0; m < BACKLOG; m++) nc.publish(subject, String(m));
    await nc.flush();
    const pulls: number[] = [];
    const spy = nc.subscribe(`$JS.API.CONSUMER.MSG.NEXT.FEDGATE_OUTBOUND.${durable}`, {
      callback: () => {
        pulls.push(performance.now());
      },
    });
    await nc.flush();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let handled = 0;
    const subscription = await bus.consume(
      {
        stream: "FEDGATE_OUTBOUND",
        durable,
        filterSubject: subject,
        maxAckPending: HELD,
        ackWaitMs: 30_000,
        orderingKey: (message) => Buffer.from(message.data).toString(),
      },
      async () => {
        await released;
        handled++;
      },
      { origin: "test", log, maxAttempts: 3 },
    );
    try {
      await eventually(() => (pulls.length > 0 ? true : undefined), 10_000, "the first pull");
      const at = (pulls[0] ?? 0) + PULL_WINDOW_MS - releaseBeforeExpiryMs(n);
      await new Promise((resolve) => setTimeout(resolve, at - performance.now()));
      const releasedAt = performance.now();
      release();
      await eventually(() => (handled >= BACKLOG ? true : undefined), 20_000, "every message handled");
      return performance.now() - releasedAt;
    } finally {
      spy.unsubscribe();
      await subscription.stop();
    }
  }

  it(`JetStreamBus - a run of messages across a pull's expiry is all handled within ${LATE_MS} ms, ${ROUNDS} rounds`, async () => {
    const rounds: number[] = [];
    for (let n = 0; n < ROUNDS; n += AT_ONCE)
      rounds.push(...(await Promise.all(Array.from({ length: AT_ONCE }, (_, i) => round(n + i)))));
    console.log(`rounds took ${rounds.map((ms) => ms.toFixed(0)).join(", ")} ms after the release`);
    expect(Math.max(...rounds)).toBeLessThan(LATE_MS);
  }, 180_000);
});
