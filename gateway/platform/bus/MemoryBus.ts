/**
 * An in-process Bus for unit tests: the same contract as JetStreamBus (streams, msgId de-duplication,
 * durable consumers that share work and deliver in order, KV buckets), with no network and no persistence.
 */
import type { KeyValueStore } from "./KeyValueStore.js";
import type {
  Bus,
  BusMessage,
  ConsumerLag,
  ConsumerSpec,
  MessageHandler,
  PublishOptions,
  PublishReceipt,
  Subscription,
  KeyValueLimits,
} from "./Bus.js";
import { type ConsumePolicy, runWithPolicy } from "./consumePolicy.js";
import { MemoryKeyValue } from "./MemoryKeyValue.js";
import { subjectMatches } from "./subjectMatches.js";
import { type StreamName, streams } from "../../../schemas/contract/topology.js";

interface StoredMessage {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
  seq: number;
}

interface StreamState {
  name: string;
  subjects: string[];
  messages: StoredMessage[];
  msgIds: Set<string>;
}

interface DurableState {
  /** Index of the next message in the stream this durable has not yet handed out. */
  cursor: number;
  busy: boolean;
  stopped: boolean;
  filterSubject: string;
}

export class MemoryBus implements Bus {
  private readonly streams = new Map<string, StreamState>();
  private readonly durables = new Map<string, DurableState>();
  private readonly wakeups = new Set<() => void>();
  private readonly buckets = new Map<string, MemoryKeyValue>();
  private readonly listeners = new Set<{
    subject: string;
    queue: Promise<void>;
    onMessage: (m: Pick<BusMessage, "subject" | "data">) => Promise<void>;
  }>();
  private closed = false;

  ensureTopology(): Promise<void> {
    for (const spec of streams) {
      if (!this.streams.has(spec.name)) {
        this.streams.set(spec.name, {
          name: spec.name,
          subjects: spec.subjects,
          messages: [],
          msgIds: new Set(),
        });
      }
    }
    return Promise.resolve();
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PublishReceipt> {
    const stream = [...this.streams.values()].find((s) => s.subjects.some((f) => subjectMatches(f, subject)));
    if (stream === undefined) return Promise.reject(new Error(`no stream holds subject ${subject}`));
    if (options.msgId !== undefined && stream.msgIds.has(options.msgId)) {
      return Promise.resolve({ stream: stream.name, seq: 0, duplicate: true });
    }
    if (options.msgId !== undefined) stream.msgIds.add(options.msgId);
    const seq = stream.messages.length + 1;
    stream.messages.push({ subject, data, headers: { ...options.headers }, seq });
    for (const wake of this.wakeups) wake();
    return Promise.resolve({ stream: stream.name, seq, duplicate: false });
  }

  /** Every message a stream holds on subjects matching filter, in order: for test assertions. */
  messages(filter: string): BusMessage[] {
    return [...this.streams.values()]
      .flatMap((s) => s.messages)
      .filter((m) => subjectMatches(filter, m.subject))
      .map((m) => ({ ...m, deliveryCount: 1 }));
  }

  consume(spec: ConsumerSpec, handler: MessageHandler, policy: ConsumePolicy): Promise<Subscription> {
    const stream = this.streams.get(spec.stream);
    if (stream === undefined) return Promise.reject(new Error(`stream ${spec.stream} does not exist`));
    const key = `${spec.stream}/${spec.durable}`;
    const durable = this.durables.get(key) ?? {
      cursor: spec.from === "new" ? stream.messages.length : 0,
      busy: false,
      stopped: false,
      filterSubject: spec.filterSubject,
    };
    durable.stopped = false;
    this.durables.set(key, durable);
    let stopped = false;
    let running: Promise<void> = Promise.resolve();

    // Consumers sharing a durable share its cursor, and only one message is in hand at a time: the
    // ordering guarantee JetStream gives with max_ack_pending 1.
    const pump = (): void => {
      if (stopped || durable.busy) return;
      while (durable.cursor < stream.messages.length) {
        const stored = stream.messages[durable.cursor];
        if (stored === undefined) return;
        if (!subjectMatches(spec.filterSubject, stored.subject)) {
          durable.cursor++;
          continue;
        }
        durable.busy = true;
        const message: BusMessage = { ...stored, deliveryCount: 1 };
        running = runWithPolicy(
          message,
          handler,
          () => undefined,
          this.publish.bind(this),
          policy,
          () => stopped,
        ).then((outcome) => {
          if (outcome !== "unsettled") durable.cursor++;
          durable.busy = false;
          queueMicrotask(() => {
            for (const wake of this.wakeups) wake();
          });
        });
        return;
      }
    };
    this.wakeups.add(pump);
    pump();
    return Promise.resolve({
      stop: async () => {
        stopped = true;
        this.wakeups.delete(pump);
        await running;
      },
    });
  }

  follow(
    stream: StreamName,
    filterSubject: string,
    from: "start" | "new",
    onMessage: (m: BusMessage) => void,
  ): Promise<Subscription> {
    const state = this.streams.get(stream);
    if (state === undefined) return Promise.reject(new Error(`stream ${stream} does not exist`));
    let cursor = from === "start" ? 0 : state.messages.length;
    const pump = (): void => {
      for (; cursor < state.messages.length; cursor++) {
        const stored = state.messages[cursor];
        if (stored !== undefined && subjectMatches(filterSubject, stored.subject))
          onMessage({ ...stored, deliveryCount: 1 });
      }
    };
    this.wakeups.add(pump);
    pump();
    return Promise.resolve({
      stop: () => {
        this.wakeups.delete(pump);
        return Promise.resolve();
      },
    });
  }

  send(subject: string, data: Uint8Array): Promise<void> {
    for (const listener of this.listeners)
      if (subjectMatches(listener.subject, subject))
        // One at a time, in order, as a NATS subscription hands them out; a failing listener only logs there.
        listener.queue = listener.queue
          .then(() => listener.onMessage({ subject, data }))
          .catch(() => undefined);
    return Promise.resolve();
  }

  listen(
    subject: string,
    onMessage: (m: Pick<BusMessage, "subject" | "data">) => Promise<void>,
  ): Subscription {
    const listener = { subject, queue: Promise.resolve(), onMessage };
    this.listeners.add(listener);
    return {
      stop: async () => {
        this.listeners.delete(listener);
        await listener.queue;
      },
    };
  }

  consumerLag(stream: StreamName, durable: string): Promise<ConsumerLag | undefined> {
    const state = this.durables.get(`${stream}/${durable}`);
    const messages = this.streams.get(stream)?.messages ?? [];
    if (state === undefined) return Promise.resolve(undefined);
    // The message in hand is given out, not pending.
    const from = state.cursor + (state.busy ? 1 : 0);
    const pending = messages.slice(from).filter((m) => subjectMatches(state.filterSubject, m.subject)).length;
    return Promise.resolve({ pending, ackPending: state.busy ? 1 : 0 });
  }

  keyValue(bucket: string, options: KeyValueLimits = {}): Promise<KeyValueStore> {
    let kv = this.buckets.get(bucket);
    if (kv === undefined) {
      kv = new MemoryKeyValue(options.ttlMs);
      this.buckets.set(bucket, kv);
    }
    return Promise.resolve(kv);
  }

  /** Resolves once every consumer has handed out and settled every message it can see. */
  async settled(): Promise<void> {
    for (let round = 0; round < 10_000; round++) {
      await new Promise((resolve) => setImmediate(resolve));
      const idle = [...this.durables.values()].every((d) => !d.busy);
      if (idle && round > 2) return;
    }
    throw new Error("MemoryBus did not settle");
  }

  answers(): Promise<boolean> {
    return Promise.resolve(!this.closed);
  }

  close(): Promise<void> {
    this.closed = true;
    this.wakeups.clear();
    return Promise.resolve();
  }
}
