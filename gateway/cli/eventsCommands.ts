/** Operator tools: publish a test event, follow a part of the bus. */
import { randomUUID } from "node:crypto";
import type { NormalisedEvent } from "../../schemas/types.js";
import { JetStreamBus } from "../bus/JetStreamBus.js";
import type { StreamName } from "../bus/topology.js";
import { validateEvent } from "../contract/schemas.js";
import { subjects } from "../contract/subjects.js";
import { PermanentError } from "../errors.js";
import { createLogger } from "../log.js";
import { encodeJson } from "../stores/KeyValueStore.js";

export async function sendEventCommand(opts: {
  nats: string;
  from: string;
  text: string;
  sender: string;
  name?: string;
  marking?: string;
}): Promise<void> {
  const [network, instance, ...rest] = opts.from.split("/");
  const conversation = rest.join("/");
  if (network === undefined || instance === undefined || conversation === "") {
    throw new PermanentError("FG_EVENT_INVALID", "--from must be network/instance/conversation");
  }
  const event = validateEvent({
    specVersion: "1",
    id: randomUUID(),
    type: "message.created",
    source: { network, instance, conversation, messageId: randomUUID() },
    sender: { userId: opts.sender, ...(opts.name === undefined ? {} : { displayName: opts.name }) },
    content: { body: opts.text },
    ...(opts.marking === undefined ? {} : { marking: opts.marking }),
    timestamp: new Date().toISOString(),
  } satisfies NormalisedEvent);
  const bus = await JetStreamBus.connect({ servers: opts.nats, log: createLogger("warn") });
  try {
    const receipt = await bus.publish(subjects.inbound(event.source), encodeJson(event), { msgId: event.id });
    process.stdout.write(`published event ${event.id} (stream ${receipt.stream}, seq ${receipt.seq})\n`);
  } finally {
    await bus.close();
  }
}

const tails: Record<string, { stream: StreamName; filter: string }> = {
  inbound: { stream: "FEDGATE_INBOUND", filter: subjects.inboundAll },
  outbound: { stream: "FEDGATE_OUTBOUND", filter: subjects.outboundAll },
  audit: { stream: "FEDGATE_AUDIT", filter: subjects.auditAll },
  deadletter: { stream: "FEDGATE_DEADLETTER", filter: subjects.deadLetterAll },
};

export async function tailCommand(what: string, opts: { nats: string; all?: boolean }): Promise<void> {
  const tail = tails[what];
  if (tail === undefined)
    throw new PermanentError(
      "FG_EVENT_INVALID",
      `cannot tail "${what}": use ${Object.keys(tails).join(", ")}`,
    );
  const bus = await JetStreamBus.connect({ servers: opts.nats, log: createLogger("warn") });
  await bus.ensureTopology();
  const subscription = await bus.follow(
    tail.stream,
    tail.filter,
    opts.all === true ? "start" : "new",
    (message) => {
      process.stdout.write(`${message.subject} ${Buffer.from(message.data).toString("utf8")}\n`);
    },
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await subscription.stop();
  await bus.close();
}
