/**
 * Where the stream's messages got to on the bus, read back from the streams once the stream is over: how
 * many events a bridge stored for each message, how many deliveries the core stored for each target, and
 * which were dead-lettered. Next to the count at the far clients, it says where a loss or a double arose.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { DeadLetter, Delivery, NormalisedEvent } from "../../schemas/types.js";
import type { StreamName } from "../../schemas/contract/topology.js";

export interface BusTrace {
  /** `<network> <seq>` -> events stored in FEDGATE_INBOUND. */
  events: Map<string, number>;
  /** `<network> <seq>><target network>` -> deliveries stored in FEDGATE_OUTBOUND. */
  deliveries: Map<string, number>;
  /** `<network> <seq>` or `<network> <seq>><target network>` -> why it was dead-lettered. */
  deadLetters: Map<string, string>;
}

/** Every message stored in `stream`, oldest first. */
async function readAll(natsUrl: string, stream: StreamName): Promise<Uint8Array[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const total = (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
    const consumer = await jetstream(nc).consumers.get(stream);
    const read: Uint8Array[] = [];
    while (read.length < total) {
      const before = read.length;
      for await (const message of await consumer.fetch({ max_messages: total - read.length, expires: 5000 }))
        read.push(message.data);
      if (read.length === before) break;
    }
    return read;
  } finally {
    await nc.close();
  }
}

function json(data: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof data === "string" ? data : Buffer.from(data).toString("utf8"));
  } catch {
    return undefined;
  }
}

/** The bus's record of the messages whose text `pattern` matches (network in group 1, seq in group 2). */
export async function traceBus(natsUrl: string, pattern: RegExp): Promise<BusTrace> {
  const keyOf = (event: NormalisedEvent | undefined): string | undefined => {
    const match = pattern.exec(event?.content?.body ?? "");
    return match === null ? undefined : `${match[1]} ${match[2]}`;
  };
  const count = (map: Map<string, number>, key: string): void => {
    map.set(key, (map.get(key) ?? 0) + 1);
  };
  const trace: BusTrace = { events: new Map(), deliveries: new Map(), deadLetters: new Map() };
  for (const data of await readAll(natsUrl, "FEDGATE_INBOUND")) {
    const key = keyOf(json(data) as NormalisedEvent | undefined);
    if (key !== undefined) count(trace.events, key);
  }
  for (const data of await readAll(natsUrl, "FEDGATE_OUTBOUND")) {
    const delivery = json(data) as Delivery | undefined;
    const key = keyOf(delivery?.event);
    if (key !== undefined) count(trace.deliveries, `${key}>${delivery?.target.network ?? "?"}`);
  }
  for (const data of await readAll(natsUrl, "FEDGATE_DEADLETTER")) {
    const letter = json(data) as DeadLetter | undefined;
    if (letter?.payloadEncoding !== "utf8") continue;
    const payload = json(letter.payload) as (Partial<Delivery> & Partial<NormalisedEvent>) | undefined;
    const delivery = payload?.event === undefined ? undefined : (payload as Delivery);
    const key = keyOf(delivery?.event ?? (payload as NormalisedEvent | undefined));
    if (key === undefined) continue;
    const where = delivery === undefined ? key : `${key}>${delivery.target.network}`;
    trace.deadLetters.set(where, `${letter.origin}: ${letter.reason.code}`);
  }
  return trace;
}
