/** Operator tools: publish a test event, follow a part of the bus, look up what became of an event. */
import { randomUUID } from "node:crypto";
import type { AuditBatch, DeadLetter, Delivery, EventStatus, NormalisedEvent } from "../../schemas/types.js";
import { toolBus, type ToolBusOptions } from "./toolBus.js";
import type { StreamName } from "../../schemas/contract/topology.js";
import { validateEvent } from "../../schemas/contract/schemas.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { encodeJson } from "../platform/bus/KeyValueStore.js";
import { buckets } from "../../schemas/contract/topology.js";
import { MessageMap } from "../platform/stores/MessageMap.js";
import { LinkStore } from "../platform/stores/LinkStore.js";
import { DeliveryLedger } from "../core/routing/DeliveryLedger.js";
import { eventStatus } from "../core/admin/eventStatus.js";

export async function sendEventCommand(opts: {
  nats?: string;
  config?: string;
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
  const bus = await toolBus(opts);
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

/** One readable line per record: what a person watching the demo or an incident wants to see. */
export function describeMessage(what: string, data: Uint8Array): string[] {
  const value = JSON.parse(Buffer.from(data).toString("utf8")) as unknown;
  const where = (e: { network: string; instance: string; conversation: string; agency?: string }): string =>
    `${e.network}/${e.instance}/${e.conversation}${e.agency === undefined ? "" : ` (${e.agency})`}`;
  if (what === "audit") {
    return (value as AuditBatch).records.map(
      (r) =>
        `${r.decision.toUpperCase().padEnd(7)} ${r.reason.padEnd(22)} ${r.eventType} ${where(r.source)} -> ${r.target === undefined ? "-" : where(r.target)}${r.detail === undefined ? "" : `: ${r.detail}`}`,
    );
  }
  if (what === "outbound") {
    const d = value as Delivery;
    const sender = d.event.sender.displayName ?? d.event.sender.userId;
    const agency = d.senderAgency === undefined ? "" : ` (${d.senderAgency.name})`;
    const marking = d.marking === undefined ? "" : ` [${d.marking.label}]`;
    const body = d.event.content?.body === undefined ? "" : `: ${JSON.stringify(d.event.content.body)}`;
    return [`-> ${where(d.target)}  ${d.event.type} from ${sender}${agency}${marking}${body}`];
  }
  if (what === "deadletter") {
    const l = value as DeadLetter;
    return [`DEAD    ${l.origin} ${l.reason.code}: ${l.reason.message} (from ${l.subject})`];
  }
  const e = value as NormalisedEvent;
  return [`<- ${where(e.source)}  ${e.type} from ${e.sender.displayName ?? e.sender.userId}`];
}

export async function tailCommand(
  what: string,
  opts: ToolBusOptions & { all?: boolean; json?: boolean },
): Promise<void> {
  const tail = tails[what];
  if (tail === undefined) {
    throw new PermanentError(
      "FG_EVENT_INVALID",
      `cannot tail "${what}": use ${Object.keys(tails).join(", ")}`,
    );
  }
  const bus = await toolBus(opts);
  await bus.ensureTopology();
  const subscription = await bus.follow(
    tail.stream,
    tail.filter,
    opts.all === true ? "start" : "new",
    (message) => {
      let lines: string[];
      try {
        lines =
          opts.json === true
            ? [Buffer.from(message.data).toString("utf8")]
            : describeMessage(what, message.data);
      } catch {
        lines = [`(unreadable message on ${message.subject})`];
      }
      for (const line of lines) process.stdout.write(`${line}\n`);
    },
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await subscription.stop();
  await bus.close();
}

/** What became of a routed message, as GET /v1/events/{id} answers, read from the bus's stores directly. */
export async function eventStatusCommand(
  id: string,
  opts: ToolBusOptions & { json?: boolean },
): Promise<void> {
  const bus = await toolBus(opts);
  const links = new LinkStore(await bus.keyValue(buckets.links));
  try {
    await links.start();
    const status = await eventStatus(
      {
        ledger: new DeliveryLedger(await bus.keyValue(buckets.deliveries)),
        messages: new MessageMap(await bus.keyValue(buckets.messages)),
        links,
      },
      id,
    );
    const lines = opts.json === true ? [JSON.stringify(status)] : describeStatus(status);
    for (const line of lines) process.stdout.write(`${line}\n`);
  } finally {
    links.stop();
    await bus.close();
  }
}

/** One line for the event, then one per target: its decision and what became of the delivery. */
export function describeStatus(status: EventStatus): string[] {
  const where = (c: { network: string; instance: string; conversation: string }): string =>
    `${c.network}/${c.instance}/${c.conversation}`;
  const marking = status.marking === undefined ? "" : `, marked ${status.marking}`;
  const decided = status.decidedAt === undefined ? "" : `, decided ${status.decidedAt}`;
  return [
    `${status.eventType ?? "event"} ${status.eventId} from ${where(status.source)}${marking}${decided}`,
    ...status.targets.map((t) => {
      const outcome =
        t.delivery === undefined
          ? ""
          : `: ${t.delivery.state}${t.delivery.code === undefined ? "" : ` ${t.delivery.code}`}${
              t.delivery.failedAt === undefined ? "" : ` at ${t.delivery.failedAt}`
            }${t.delivery.detail === undefined ? "" : ` (${t.delivery.detail})`}`;
      return `  ${t.decision.toUpperCase().padEnd(7)} ${t.reason.padEnd(22)} ${where(t.target)}${t.agency === undefined ? "" : ` (${t.agency})`}${outcome}`;
    }),
  ];
}
