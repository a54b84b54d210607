/**
 * A core process frozen (SIGSTOP, as a long GC pause or a VM freeze would) for longer than its partition
 * leases live, then thawed: routing must come back within seconds, with nothing lost, doubled or reordered,
 * whether the gateway is alone or a second replica took its partitions over meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Delivery, Link } from "../../schemas/types.js";
import { PULL_WINDOW_MS } from "../../gateway/platform/bus/Bus.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { PARTITIONS, subjects } from "../../schemas/contract/subjects.js";
import { createLogger } from "../../gateway/platform/log.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { eventually, examplePolicyFile, message, writeGatewayConfig } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import type { LocalNatsServer } from "../harness/servers/LocalNatsServer.js";
import { runFedgate, type FedgateProcess } from "../helpers/processes.js";

const log = createLogger("silent");
/** Twice the partitions, so that nearly every partition has conversations. */
const CONVERSATIONS = 128;
const ACK_WAIT_MS = 2000;
/**
 * The core's lease TTL for this ack wait (see GatewayService): what a pull brings may stay unsettled for the
 * pull's length and the ack wait, and a lease is worked under for max(3 s, half that) after it is confirmed.
 */
const LEASE_TTL_MS = PULL_WINDOW_MS + ACK_WAIT_MS + Math.max(3000, (PULL_WINDOW_MS + ACK_WAIT_MS) / 2);
const FROZEN_MS = LEASE_TTL_MS + 3000;
/** One event every so many milliseconds, round the conversations. */
const PACE_MS = 10;
/** How long events keep coming after the thaw. */
const AFTER_THAW_MS = 6000;

const links: Link[] = Array.from({ length: CONVERSATIONS }, (_, i) => ({
  id: `stall-${i}`,
  endpoints: [
    {
      network: "xmpp",
      instance: "bpol",
      conversation: `stall-${i}@conference.bpol.localhost`,
      agency: "bpol",
    },
    { network: "stashcat", instance: "ni", conversation: `stall:${i}`, agency: "polizei-ni" },
  ],
}));

/** A NATS of its own, a bus client, and gateway processes started on it; stop() ends them all. */
interface Scene {
  bus: JetStreamBus;
  gateways: FedgateProcess[];
  stop(): Promise<void>;
}

async function startScene(nats: LocalNatsServer, replicas: number): Promise<Scene> {
  const config = await writeGatewayConfig(nats.url, {
    links,
    gateway: { policyFile: examplePolicyFile, ackWaitMs: ACK_WAIT_MS },
    log: { level: "info" },
  });
  const bus = await JetStreamBus.connect({ servers: nats.url, log });
  await bus.ensureTopology();
  const gateways: FedgateProcess[] = [];
  const scene: Scene = {
    bus,
    gateways,
    stop: async () => {
      for (const gateway of gateways) {
        gateway.child.kill("SIGCONT");
        gateway.child.kill("SIGKILL");
      }
      await bus.close();
      await nats.stop();
    },
  };
  // One first, so that the declared links exist before the next races to create them.
  gateways.push(runFedgate(["gateway", "--config", config]));
  await gateways[0]?.waitFor("gateway consuming inbound events");
  for (let i = 1; i < replicas; i++) {
    gateways.push(runFedgate(["gateway", "--config", config]));
    await gateways[i]?.waitFor(`"held":${PARTITIONS / replicas}`);
  }
  return scene;
}

/**
 * Routes a paced stream round every conversation, freezes `victim` for FROZEN_MS, thaws it, keeps the stream
 * going for AFTER_THAW_MS, then checks at the far end: every event routed once, in order per conversation,
 * all of them within ackWaitMs + 10 s of the thaw. Reports how long catching up took.
 */
async function freezeAndCount(bus: JetStreamBus, victim: FedgateProcess, what: string): Promise<void> {
  const delivered: { delivery: Delivery; at: number }[] = [];
  const subscription = await bus.follow("FEDGATE_OUTBOUND", subjects.outboundAll, "start", (m) => {
    delivered.push({ delivery: JSON.parse(Buffer.from(m.data).toString()) as Delivery, at: Date.now() });
  });
  const sent: { id: string; conversation: number; n: number; at: number }[] = [];
  let publishUntil = Infinity;
  const publisher = (async () => {
    for (let n = 0; Date.now() < publishUntil; n++) {
      const conversation = n % CONVERSATIONS;
      const from = links[conversation]?.endpoints[0];
      if (from === undefined) throw new Error("no endpoint");
      const event = message(from, `event ${n}`);
      sent.push({ id: event.id, conversation, n, at: Date.now() });
      await bus.publish(subjects.inbound(event.source), encodeJson(event), { msgId: event.id });
      await new Promise((resolve) => setTimeout(resolve, PACE_MS));
    }
  })();

  await eventually(() => (delivered.length >= 200 ? true : undefined), 30_000, "first deliveries");
  victim.child.kill("SIGSTOP");
  await new Promise((resolve) => setTimeout(resolve, FROZEN_MS));
  const thawedAt = Date.now();
  victim.child.kill("SIGCONT");
  // Events keep coming after the thaw, into every partition, while the gateway sorts its leases out.
  publishUntil = thawedAt + AFTER_THAW_MS;
  await publisher;

  // Caught up: every event sent, before the freeze, during it and after it, is routed.
  const bound = ACK_WAIT_MS + 10_000;
  const caughtUpAt = await eventually(
    () => (delivered.length >= sent.length ? Date.now() : undefined),
    Math.max(thawedAt + bound - Date.now(), 0),
    `all ${sent.length} events routed within ${bound} ms of the thaw`,
  );
  const sentAt = new Map(sent.map((s) => [s.id, s.at]));
  const backlogRoutedAt = Math.max(
    ...delivered.filter((d) => (sentAt.get(d.delivery.event.id) ?? 0) < thawedAt).map((d) => d.at),
  );
  const lags = delivered
    .filter((d) => (sentAt.get(d.delivery.event.id) ?? 0) >= thawedAt)
    .map((d) => d.at - (sentAt.get(d.delivery.event.id) ?? 0));
  console.log(
    `${what}: events sent before the thaw routed ${backlogRoutedAt - thawedAt} ms after SIGCONT, ` +
      `events sent after it within ${Math.max(...lags)} ms each; all ${sent.length} routed ` +
      `${caughtUpAt - thawedAt} ms after SIGCONT (events kept coming for ${AFTER_THAW_MS} ms)`,
  );
  // Give a late duplicate the chance to show up before counting.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  await subscription.stop();

  const ids = delivered.map((d) => d.delivery.event.id);
  expect(new Set(ids).size).toBe(sent.length);
  expect(ids).toHaveLength(sent.length);
  expect(new Set(ids)).toEqual(new Set(sent.map((s) => s.id)));
  // Within each conversation, deliveries are stored in the order the events were sent.
  const order = new Map(sent.map((s) => [s.id, s.n]));
  for (let c = 0; c < CONVERSATIONS; c++) {
    const conversation = `stall:${c}`;
    const ns = delivered
      .filter((d) => d.delivery.target.conversation === conversation)
      .map((d) => order.get(d.delivery.event.id) ?? -1);
    expect(ns, `order in ${conversation}`).toEqual([...ns].sort((a, b) => a - b));
  }
  expect(victim.child.exitCode).toBeNull();
}

const loneNats = await startNatsOrSkip();

describe.skipIf(loneNats === undefined)(
  "core stall - a lone gateway frozen for longer than its leases",
  () => {
    let scene: Scene | undefined;

    beforeAll(async () => {
      if (loneNats !== undefined) scene = await startScene(loneNats, 1);
    });

    afterAll(async () => {
      await scene?.stop();
    });

    it(`core stall - a lone gateway under SIGSTOP for ${FROZEN_MS} ms (leases live ${LEASE_TTL_MS} ms): every event routed once, in order, all within ackWaitMs + 10 s of SIGCONT`, async () => {
      const victim = scene?.gateways[0];
      if (scene === undefined || victim === undefined) throw new Error("no gateway");
      await freezeAndCount(scene.bus, victim, "lone gateway frozen");
    });
  },
);

const pairNats = await startNatsOrSkip();

describe.skipIf(pairNats === undefined)(
  "core stall - one of two replicas frozen for longer than its leases",
  () => {
    let scene: Scene | undefined;

    beforeAll(async () => {
      if (pairNats !== undefined) scene = await startScene(pairNats, 2);
    });

    afterAll(async () => {
      await scene?.stop();
    });

    it(`core stall - one of two replicas under SIGSTOP for ${FROZEN_MS} ms: the other takes over, the frozen one gives up without racing it; every event routed once, in order, all within ackWaitMs + 10 s of SIGCONT`, async () => {
      const victim = scene?.gateways[0];
      if (scene === undefined || victim === undefined) throw new Error("no gateway");
      await freezeAndCount(scene.bus, victim, "one of two replicas frozen");
      // The survivor served throughout, and the thawed one works again.
      expect(scene.gateways[1]?.child.exitCode).toBeNull();
    });
  },
);
