import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Delivery, Link } from "../../schemas/types.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { PARTITIONS, subjects } from "../../schemas/contract/subjects.js";
import { createLogger } from "../../gateway/platform/log.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { auditRecordsIn, eventually, message, writeGatewayConfig } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { runFedgate, type FedgateProcess } from "../helpers/processes.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const CONVERSATIONS = 40;
const EVENTS = 1000;

const links: Link[] = Array.from({ length: CONVERSATIONS }, (_, i) => ({
  id: `room-${i}`,
  endpoints: [
    {
      network: "xmpp",
      instance: "bpol",
      conversation: `room-${i}@conference.bpol.localhost`,
      agency: "bpol",
    },
    { network: "stashcat", instance: "ni", conversation: `channel:${i}`, agency: "polizei-ni" },
  ],
}));

describe.skipIf(nats === undefined)(
  "replicas - two core processes share the work and survive kill -9",
  () => {
    let bus: JetStreamBus;
    const replicas: FedgateProcess[] = [];

    beforeAll(async () => {
      if (nats === undefined) return;
      const config = await writeGatewayConfig(nats.url, { links, log: { level: "info" } });
      bus = await JetStreamBus.connect({ servers: nats.url, log });
      await bus.ensureTopology();
      // Start one first so the declared links exist before the second races to create them.
      replicas.push(runFedgate(["gateway", "--config", config]));
      await replicas[0]?.waitFor("gateway consuming inbound events");
      replicas.push(runFedgate(["gateway", "--config", config]));
      // The work is split once the first replica hands half of the partitions to the second.
      await replicas[1]?.waitFor(`"held":${PARTITIONS / 2}`);
    });

    afterAll(async () => {
      if (nats === undefined) return;
      for (const replica of replicas) replica.child.kill("SIGKILL");
      await bus.close();
      await nats.stop();
    });

    it(`replicas - kill -9 of one replica while ${EVENTS} events flow loses none, doubles none, keeps each conversation's order`, async () => {
      const decidedBy = new Set<string>();
      const audit = await bus.follow("FEDGATE_AUDIT", subjects.auditAll, "start", (m) => {
        for (const record of auditRecordsIn(m.data)) decidedBy.add(record.decidedBy ?? "");
      });
      const delivered: Delivery[] = [];
      const subscription = await bus.follow("FEDGATE_OUTBOUND", subjects.outboundAll, "start", (m) => {
        delivered.push(JSON.parse(Buffer.from(m.data).toString()) as Delivery);
      });
      const sent: { id: string; conversation: number; n: number }[] = [];
      const publishing = (async () => {
        for (let n = 0; n < EVENTS; n++) {
          const conversation = n % CONVERSATIONS;
          const from = links[conversation]?.endpoints[0];
          if (from === undefined) throw new Error("no endpoint");
          const event = message(from, `event ${n}`);
          sent.push({ id: event.id, conversation, n });
          await bus.publish(subjects.inbound(event.source), encodeJson(event), { msgId: event.id });
          if (n % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();

      await eventually(() => (delivered.length >= 150 ? true : undefined), 30_000, "first deliveries");
      const victim = replicas[0];
      victim?.child.kill("SIGKILL");
      await victim?.exited;
      const deliveredAtKill = delivered.length;
      await publishing;

      await eventually(() => (delivered.length >= EVENTS ? true : undefined), 60_000, `${EVENTS} deliveries`);
      // Give a late duplicate the chance to show up before counting.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await subscription.stop();
      await audit.stop();

      expect(deliveredAtKill).toBeLessThan(EVENTS);
      // Both replicas decided events: the victim before it died, the survivor throughout.
      const pids = [...decidedBy].map((d) => Number(d.split("/").pop()));
      expect(pids).toContain(replicas[0]?.child.pid);
      expect(pids).toContain(replicas[1]?.child.pid);
      const ids = delivered.map((d) => d.event.id);
      expect(new Set(ids).size).toBe(EVENTS);
      expect(delivered).toHaveLength(EVENTS);
      expect(new Set(ids)).toEqual(new Set(sent.map((s) => s.id)));

      // Within each conversation, deliveries are stored in the order the events were sent.
      const order = new Map(sent.map((s) => [s.id, s.n]));
      for (let c = 0; c < CONVERSATIONS; c++) {
        const conversation = `channel:${c}`;
        const ns = delivered
          .filter((d) => d.target.conversation === conversation)
          .map((d) => order.get(d.event.id) ?? -1);
        expect(ns, `order in ${conversation}`).toEqual([...ns].sort((a, b) => a - b));
      }
      // The survivor kept serving.
      expect(replicas[1]?.child.exitCode).toBeNull();
    });
  },
);
