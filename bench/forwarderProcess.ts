/**
 * The bare forwarder, run as its own process beside the core (`node forwarderProcess.js <nats-url>`): it
 * consumes every inbound event, publishes each unchanged to an outbound subject and acks it. No validation,
 * policy, stores, audit or telemetry: what moving an event through JetStream costs at the least, connected
 * with the options fedgate connects with. It prints FORWARDER_READY once its consumer pulls, and stops on
 * SIGTERM.
 */
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { subjects } from "../schemas/contract/subjects.js";
import { FORWARDER_READY } from "./routingLoad.js";

/** Events in work at once; enough that the round trip of each publish is not what limits it. */
const FORWARDER_IN_FLIGHT = 256;

const natsUrl = process.argv[2];
if (natsUrl === undefined) throw new Error("usage: forwarderProcess.js <nats-url>");
const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
await jsm.consumers.add("FEDGATE_INBOUND", {
  durable_name: "forwarder",
  ack_policy: AckPolicy.Explicit,
  max_ack_pending: FORWARDER_IN_FLIGHT,
});
const messages = await (
  await js.consumers.get("FEDGATE_INBOUND", "forwarder")
).consume({ max_messages: FORWARDER_IN_FLIGHT });
const outbound = subjects.outbound("stashcat", "ni");
process.once("SIGTERM", () => void messages.close());
process.stdout.write(`${FORWARDER_READY}\n`);
for await (const m of messages) {
  void js.publish(outbound, m.data, { msgID: `fwd-${String(m.seq)}` }).then(() => m.ack());
}
await nc.drain();
