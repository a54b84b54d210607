/**
 * The message bus every fedgate process talks through. JetStreamBus is the production implementation;
 * MemoryBus serves unit tests without a network.
 */
import type { KeyValueStore } from "./KeyValueStore.js";
import type { ConsumePolicy } from "./consumePolicy.js";
import type { StreamName } from "../../../schemas/contract/topology.js";

export interface PublishOptions {
  /** De-duplication id: a second publish with the same id inside the stream's window is dropped. */
  msgId?: string;
  headers?: Record<string, string>;
}

export interface PublishReceipt {
  stream: string;
  seq: number;
  /** True when the bus already held a message with this msgId. */
  duplicate: boolean;
}

export interface BusMessage {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
  /** 1 on first delivery; higher when the bus redelivers (after a crash or an expired ack wait). */
  deliveryCount: number;
  /** Position in its stream. */
  seq: number;
}

export interface ConsumerSpec {
  stream: StreamName;
  /** Durable name: every process that consumes with the same name shares the work. */
  durable: string;
  filterSubject: string;
  /** How many messages may be in work at once (across every process sharing the consumer). */
  maxAckPending: number;
  ackWaitMs: number;
  /**
   * Messages with the same key are handled one at a time, in stream order; different keys concurrently.
   * Without it every message is handled in turn.
   */
  orderingKey?: (message: BusMessage) => string;
  /**
   * Asked before each pull for messages: while it says false, the consumer asks for none (those in hand are
   * still finished). A pull lasts at most PULL_WINDOW_MS. MemoryBus does not ask: it lives in one process,
   * where no stalled consumer can race another.
   */
  mayPull?: () => boolean;
  /**
   * Where a consumer created now begins: every message the stream holds ("start", the default) or only those
   * stored from now on ("new"). A consumer that exists already goes on where it was.
   */
  from?: "start" | "new";
}

/** The longest one pull for messages stays open: messages can reach a consumer this long after mayPull said yes. */
export const PULL_WINDOW_MS = 2000;

/**
 * Processes one message. Returning acknowledges it. Throwing hands it to the consumer's error policy
 * (see consumeLoop.ts): transient errors retry in place, anything else goes to the dead-letter subject.
 */
export type MessageHandler = (message: BusMessage, progress: () => void) => Promise<void>;

export interface Subscription {
  /**
   * Stops asking for messages and finishes every message already received, in order; whoever consumes
   * next continues after the last of them.
   */
  stop(): Promise<void>;
}

/** What a key-value bucket keeps. */
export interface KeyValueLimits {
  /** Entries expire this long after their last write. */
  ttlMs?: number;
  /**
   * The most bytes the bucket holds; beyond it the oldest entries go first, as if expired. MemoryBus keeps no
   * byte count.
   */
  maxBytes?: number;
}

/** How far a durable consumer is behind, as the server counts it. */
export interface ConsumerLag {
  /** Messages of its stream it has not been given yet. */
  pending: number;
  /** Messages it was given and has not acknowledged. */
  ackPending: number;
}

export interface Bus {
  /** Creates or updates the streams; idempotent, safe for several processes at once. */
  ensureTopology(): Promise<void>;
  /** Resolves once the bus has stored the message durably. */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PublishReceipt>;
  /** Creates the durable consumer if needed and runs handler for each message, one at a time. */
  consume(spec: ConsumerSpec, handler: MessageHandler, policy: ConsumePolicy): Promise<Subscription>;
  /**
   * Follows a stream without a durable consumer (for operators' tails and tests): every stored message
   * matching filterSubject from the start, or only new ones.
   */
  follow(
    stream: StreamName,
    filterSubject: string,
    from: "start" | "new",
    onMessage: (m: BusMessage) => void,
  ): Promise<Subscription>;
  /**
   * Plain NATS, nothing stored: for exchanges where the sender repeats until the receiver answers (what a
   * gateway sends a partner gateway: see gateway/core/federation/PartnerLink.ts). Resolves once the local server
   * has the message, which says nothing of whether anyone received it.
   */
  send(subject: string, data: Uint8Array): Promise<void>;
  /** Hears what is sent on `subject` (wildcards allowed) from now on, one message at a time, in order. */
  listen(
    subject: string,
    onMessage: (m: Pick<BusMessage, "subject" | "data">) => Promise<void>,
  ): Subscription;
  /**
   * How far the durable consumer `durable` of `stream` is behind, whichever process consumes with it;
   * undefined when there is no such consumer. A request to the server: read it through ConsumerLagReading.
   */
  consumerLag(stream: StreamName, durable: string): Promise<ConsumerLag | undefined>;
  /**
   * Opens (creating if needed) a key-value bucket. Only what the options name is set, on a new bucket or an
   * existing one; opening without them leaves what another process set.
   */
  keyValue(bucket: string, options?: KeyValueLimits): Promise<KeyValueStore>;
  /**
   * Whether the connection is up and the server answers a round trip within `timeoutMs`: what readiness
   * reports. A frozen server keeps its connection open, so only a round trip shows it no longer answers.
   */
  answers(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}
