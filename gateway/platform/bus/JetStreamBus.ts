/** The production Bus: NATS JetStream streams, durable pull consumers and KV buckets. */
import {
  AuthorizationError,
  connect,
  type Authenticator,
  type NatsConnection,
  type ConnectionOptions,
} from "@nats-io/transport-node";
import {
  AckPolicy,
  DiscardPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  JetStreamApiError,
  JetStreamError,
  type ConsumerMessages,
  type JsMsg,
} from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { Logger } from "pino";
import { PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import type { KeyValueStore } from "./KeyValueStore.js";
import {
  type Bus,
  type BusMessage,
  type ConsumerLag,
  type ConsumerSpec,
  type MessageHandler,
  type PublishOptions,
  type KeyValueLimits,
  type PublishReceipt,
  PULL_WINDOW_MS,
  type Subscription,
} from "./Bus.js";
import { type ConsumePolicy, runWithPolicy } from "./consumePolicy.js";
import { JetStreamKeyValue } from "./JetStreamKeyValue.js";
import { ConsumerLagReading } from "./ConsumerLagReading.js";
import { KeyedSequencer } from "./KeyedSequencer.js";
import { patchNatsRequest } from "./natsRequestPatch.js";
import { observableGauge } from "../telemetry.js";
import { MAX_MESSAGE_BYTES, type StreamName, streams } from "../../../schemas/contract/topology.js";
import { validateConfig } from "../../../schemas/contract/schemas.js";
import type { StreamLimits } from "../../../schemas/types.js";

export interface JetStreamBusOptions {
  servers: string;
  user?: string;
  password?: string;
  token?: string;
  /** A .creds file's or an nkey seed's login (credsAuthenticator, nkeyAuthenticator). */
  authenticator?: Authenticator;
  /** PEM texts: the CA that verifies the servers, and a client certificate and key for servers that ask. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Replicas of streams and buckets (3 on a clustered NATS). */
  replicas?: number;
  /** What each stream keeps (config nats.streams); none: the schema's defaults, for new streams only. */
  streamLimits?: StreamLimits;
  /** JetStream's duplicate window for Nats-Msg-Id de-duplication. */
  duplicateWindowMs?: number;
  name?: string;
  log: Logger;
}

const NANOS_PER_MS = 1_000_000;
const NANOS_PER_DAY = 24 * 60 * 60 * 1000 * NANOS_PER_MS;

/** The streams' limits when no config gives them (the CLI's tools): the config schema's defaults. */
function defaultStreamLimits(): StreamLimits {
  return validateConfig({ nats: { url: "nats://127.0.0.1:4222" } }).nats.streams;
}
/**
 * One pull asks for this many messages; the server still sends no more than maxAckPending unacknowledged,
 * so the pull stays open and messages stream in as acks free room, with no new request in between.
 */
const FETCH_BATCH = 1024;
/** How long one pull waits for messages; also the longest a stopping consumer waits for its last batch. */
const FETCH_EXPIRES_MS = PULL_WINDOW_MS;
/** How often a consumer whose mayPull says no asks again. */
const PULL_PAUSE_MS = 50;
/** How long past a pull's window a stopping consumer waits for it before closing it. */
const STOP_GRACE_MS = 3000;
/** How long a consumer waits before pulling again after a pull failed. */
const PULL_RETRY_MS = 1000;
/**
 * How long past its window a pull may stay open before the consumer asks the server whether it still
 * delivers to it (see endOverduePull).
 */
const OVERDUE_PULL_MS = 100;

/** Every consumer running in this process: bounded by the consumers it starts (partitions, adapters). */
const consumerLags = new Set<ConsumerLagReading>();

/**
 * Reports what the last reading found and, where that is older than CONSUMER_INFO_MAX_AGE_MS, reads anew for
 * the next collection: the server is asked at most every 15 s per consumer, and only while metrics are
 * collected, never while messages are handled.
 */
function observeConsumers(
  report: (value: number, attributes: Record<string, string>) => void,
  which: keyof ConsumerLag,
): void {
  for (const lag of consumerLags)
    report(lag.current()?.[which] ?? 0, { stream: lag.stream, consumer: lag.consumer });
}

observableGauge(
  "fedgate.consumer.lag",
  {
    description:
      "Messages of a stream a durable consumer has not been given yet, per stream and consumer (read from the server at most every 15 s)",
  },
  (report) => observeConsumers(report, "pending"),
);
observableGauge(
  "fedgate.consumer.ack_pending",
  {
    description:
      "Messages a durable consumer was given and has not acknowledged, per stream and consumer (read at most every 15 s)",
  },
  (report) => observeConsumers(report, "ackPending"),
);

/**
 * A pull that ended because two of its idle heartbeats did not arrive in time. The client checks them on a
 * timer, so a process busy working off a backlog misses them though the server sent them: no error of the
 * server's or the network's, and no reason to wait before the next pull.
 */
function missedHeartbeats(error: unknown): boolean {
  return error instanceof JetStreamError && error.message === "heartbeats missed";
}

export class JetStreamBus implements Bus {
  private readonly subscriptions = new Set<Subscription>();
  /** Between a "disconnect" and the next "reconnect" of the client. */
  private disconnected = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: JetStreamBusOptions,
  ) {}

  static async connect(options: JetStreamBusOptions): Promise<JetStreamBus> {
    patchNatsRequest();
    const connectOptions: ConnectionOptions = {
      servers: options.servers.split(",").map((s) => s.trim()),
      name: options.name ?? "fedgate",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      // Otherwise every JetStream publish builds two Error objects for async stack traces: about a quarter
      // of the core's CPU in `npm run bench`. Our own errors name the subject, which is the context needed.
      noAsyncTraces: true,
    };
    if (options.user !== undefined) connectOptions.user = options.user;
    if (options.password !== undefined) connectOptions.pass = options.password;
    if (options.token !== undefined) connectOptions.token = options.token;
    if (options.authenticator !== undefined) connectOptions.authenticator = options.authenticator;
    if (options.tls !== undefined) connectOptions.tls = options.tls;
    let nc: NatsConnection;
    try {
      nc = await connect(connectOptions);
    } catch (cause) {
      throw connectFailure(options.servers, cause);
    }
    const bus = new JetStreamBus(nc, jetstream(nc), await jetstreamManager(nc), options);
    void bus.watchStatus();
    return bus;
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === "disconnect" || status.type === "reconnect") {
        this.disconnected = status.type === "disconnect";
        this.options.log.warn({ status: status.type }, "NATS connection status changed");
      }
    }
  }

  async ensureTopology(): Promise<void> {
    const replicas = this.options.replicas ?? 1;
    const duplicateWindow = (this.options.duplicateWindowMs ?? 600_000) * NANOS_PER_MS;
    const limits = this.options.streamLimits ?? defaultStreamLimits();
    for (const spec of streams) {
      const { maxAgeDays, maxBytes, maxMsgs } = limits[spec.limits];
      const maxAge = Math.round(maxAgeDays * NANOS_PER_DAY);
      const config = {
        name: spec.name,
        subjects: spec.subjects,
        max_age: maxAge,
        max_bytes: maxBytes,
        max_msgs: maxMsgs,
        max_msg_size: MAX_MESSAGE_BYTES,
        discard: spec.discard === "new" ? DiscardPolicy.New : DiscardPolicy.Old,
        // Within the age limit; with none (0), the whole window.
        duplicate_window: maxAge === 0 ? duplicateWindow : Math.min(duplicateWindow, maxAge),
        num_replicas: replicas,
      };
      try {
        await this.jsm.streams.info(spec.name);
        // Without a config's limits (a tool such as fedgate tail), an existing stream stays as the
        // processes that have the config set it: defaults would undo an agency's retention and replicas.
        if (this.options.streamLimits !== undefined) await this.jsm.streams.update(spec.name, config);
      } catch (error) {
        if (!isNotFound(error)) throw asTransient(error, `cannot set up stream ${spec.name}`);
        try {
          await this.jsm.streams.add(config);
        } catch (addError) {
          // Another replica created it between our info and add: that is the state we wanted.
          if (!(await this.streamExists(spec.name)))
            throw asTransient(addError, `cannot create stream ${spec.name}`);
        }
      }
    }
  }

  private async streamExists(name: string): Promise<boolean> {
    try {
      await this.jsm.streams.info(name);
      return true;
    } catch {
      return false;
    }
  }

  async publish(subject: string, data: Uint8Array, options: PublishOptions = {}): Promise<PublishReceipt> {
    let hdrs;
    if (options.headers !== undefined) {
      hdrs = natsHeaders();
      for (const [key, value] of Object.entries(options.headers)) hdrs.set(key, value);
    }
    try {
      const ack = await this.js.publish(subject, data, {
        ...(options.msgId === undefined ? {} : { msgID: options.msgId }),
        ...(hdrs === undefined ? {} : { headers: hdrs }),
      });
      return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate };
    } catch (cause) {
      throw new TransientError("FG_BUS_PUBLISH_FAILED", `cannot publish to ${subject}`, { cause });
    }
  }

  async consume(spec: ConsumerSpec, handler: MessageHandler, policy: ConsumePolicy): Promise<Subscription> {
    const config = {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: spec.from === "new" ? DeliverPolicy.New : DeliverPolicy.All,
      filter_subject: spec.filterSubject,
      max_ack_pending: spec.maxAckPending,
      ack_wait: spec.ackWaitMs * NANOS_PER_MS,
    };
    try {
      await this.jsm.consumers.info(spec.stream, spec.durable);
      await this.jsm.consumers.update(spec.stream, spec.durable, config);
    } catch (error) {
      if (!isNotFound(error)) throw asTransient(error, `cannot set up consumer ${spec.durable}`);
      try {
        await this.jsm.consumers.add(spec.stream, config);
      } catch (addError) {
        // A second replica may have added it concurrently.
        try {
          await this.jsm.consumers.info(spec.stream, spec.durable);
        } catch {
          throw asTransient(addError, `cannot create consumer ${spec.durable}`);
        }
      }
    }
    const consumer = await this.js.consumers.get(spec.stream, spec.durable);
    const lag = new ConsumerLagReading(spec.stream, spec.durable, () =>
      this.consumerLag(spec.stream, spec.durable),
    );
    // Read first when metrics are first collected, not as the consumer starts: the core starts one per partition.
    consumerLags.add(lag);
    const publish = this.publish.bind(this);
    const keyed = new KeyedSequencer();
    const stopping = new AbortController();
    const stopped = (): boolean => stopping.signal.aborted;
    const settle = async (jsMsg: JsMsg, message: BusMessage): Promise<void> => {
      const outcome = await runWithPolicy(message, handler, () => jsMsg.working(), publish, policy, stopped);
      if (outcome === "ack") jsMsg.ack();
      else if (outcome === "term") jsMsg.term();
    };
    // Batches (one pull request each) rather than a continuous consume: a batch's iterator yields every
    // message the server sends for it, so a stopping consumer finishes all it was given and none waits,
    // delivered but unseen, for its ack wait to run out. Handing messages back with nak would not do:
    // the server may act on a nak after the next consumer's first pull, letting newer messages overtake.
    let batch: ConsumerMessages | undefined;
    const loop = (async () => {
      while (!stopped()) {
        if (spec.mayPull?.() === false) {
          await new Promise((resolve) => setTimeout(resolve, PULL_PAUSE_MS));
          continue;
        }
        try {
          const pull = await consumer.fetch({
            max_messages: FETCH_BATCH,
            expires: FETCH_EXPIRES_MS,
          });
          batch = pull;
          const overdue = setTimeout(
            () => this.endOverduePull(pull, spec.durable),
            FETCH_EXPIRES_MS + OVERDUE_PULL_MS,
          );
          try {
            for await (const jsMsg of pull) {
              const message = toBusMessage(jsMsg);
              keyed.run(spec.orderingKey?.(message) ?? "", () => settle(jsMsg, message));
            }
          } finally {
            clearTimeout(overdue);
          }
        } catch (error) {
          if (stopped()) break;
          if (missedHeartbeats(error)) {
            policy.log.debug({ consumer: spec.durable }, "a pull missed its heartbeats; pulling again");
            continue;
          }
          policy.log.warn({ err: error, consumer: spec.durable }, "pulling messages failed; retrying");
          await new Promise((resolve) => setTimeout(resolve, PULL_RETRY_MS));
        }
      }
    })();
    const subscription: Subscription = {
      stop: async () => {
        stopping.abort();
        // A pull ends within its window; with NATS away it may never, and nothing it holds could be acked
        // anyway: past the window it is closed, and the server hands its messages out again after their ack wait.
        const ended = await Promise.race([
          loop.then(() => true),
          new Promise<false>((resolve) => setTimeout(() => resolve(false), FETCH_EXPIRES_MS + STOP_GRACE_MS)),
        ]);
        if (!ended) await batch?.close();
        await loop;
        await keyed.idle();
        consumerLags.delete(lag);
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  /**
   * Ends a pull that outlived its window without the server's "408 Request Timeout". nats-server before 2.9.16
   * (Debian 12 ships 2.9.10) drops a pull that expires while it hands out a run of messages without saying so
   * (fixed upstream in nats-server df282a2); the client would notice only when two idle heartbeats are missing,
   * about two seconds later, and the consumer's messages would wait that long. The server never delivers to a
   * pull past its expiry, so once a round trip shows everything it sent before has arrived, the pull is over:
   * closing it then hands the loop what it still holds and loses nothing.
   */
  private endOverduePull(pull: ConsumerMessages, consumer: string): void {
    this.options.log.debug({ consumer }, "a pull outlived its window; closing it once the server is heard");
    this.nc
      .flush()
      .then(() => pull.close())
      // Without a round trip (NATS is away) the pull's heartbeats and the reconnect end it, as before.
      .catch(() => undefined);
  }

  /** How many messages `stream` holds, and the sequence of its last one (0 when it never held any). */
  async storedRange(stream: StreamName): Promise<{ messages: number; last: number }> {
    try {
      const { state } = await this.jsm.streams.info(stream);
      return { messages: state.messages, last: state.last_seq };
    } catch (cause) {
      throw asTransient(cause, `cannot read the state of stream ${stream}`);
    }
  }

  async follow(
    stream: StreamName,
    filterSubject: string,
    from: "start" | "new",
    onMessage: (m: BusMessage) => void,
  ): Promise<Subscription> {
    const consumer = await this.js.consumers.get(stream, {
      // A string, not an array: arrays need nats-server 2.10, Debian 12 ships 2.9.
      filter_subjects: filterSubject,
      deliver_policy: from === "start" ? DeliverPolicy.All : DeliverPolicy.New,
    });
    const messages = await consumer.consume();
    const loop = (async () => {
      for await (const m of messages) onMessage(toBusMessage(m));
    })();
    return {
      stop: async () => {
        await messages.close();
        await loop;
      },
    };
  }

  async send(subject: string, data: Uint8Array): Promise<void> {
    try {
      this.nc.publish(subject, data);
      await this.nc.flush();
    } catch (cause) {
      throw new TransientError("FG_BUS_PUBLISH_FAILED", `cannot send on ${subject}`, { cause });
    }
  }

  listen(
    subject: string,
    onMessage: (m: Pick<BusMessage, "subject" | "data">) => Promise<void>,
  ): Subscription {
    const subscription = this.nc.subscribe(subject);
    const loop = (async () => {
      for await (const m of subscription) {
        try {
          await onMessage({ subject: m.subject, data: m.data });
        } catch (error) {
          this.options.log.error({ err: error, subject: m.subject }, "a listener failed on a message");
        }
      }
    })();
    const stop = async (): Promise<void> => {
      this.subscriptions.delete(handle);
      subscription.unsubscribe();
      await loop;
    };
    const handle: Subscription = { stop };
    this.subscriptions.add(handle);
    return handle;
  }

  async consumerLag(stream: StreamName, durable: string): Promise<ConsumerLag | undefined> {
    try {
      const info = await this.jsm.consumers.info(stream, durable);
      return { pending: info.num_pending, ackPending: info.num_ack_pending };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw asTransient(error, `cannot read consumer ${durable} of ${stream}`);
    }
  }

  async keyValue(bucket: string, options: KeyValueLimits = {}): Promise<KeyValueStore> {
    try {
      const kv = await new Kvm(this.js).create(bucket, {
        history: 1,
        replicas: this.options.replicas ?? 1,
        ...(options.ttlMs === undefined ? {} : { ttl: options.ttlMs }),
      });
      await this.applyLimits(bucket, options);
      return new JetStreamKeyValue(kv);
    } catch (cause) {
      throw new TransientError("FG_STORE_FAILED", `cannot open key-value bucket ${bucket}`, { cause });
    }
  }

  /**
   * An existing bucket keeps the limits it was made with: entries must expire, and make room, as the caller
   * counts on. Only the limits named change, so a process opening the bucket without them leaves them be.
   */
  private async applyLimits(bucket: string, { ttlMs, maxBytes }: KeyValueLimits): Promise<void> {
    if (ttlMs === undefined && maxBytes === undefined) return;
    const { config } = await this.jsm.streams.info(`KV_${bucket}`);
    const maxAge = ttlMs === undefined ? config.max_age : ttlMs * NANOS_PER_MS;
    // A full bucket drops its oldest entries rather than refuse writes: bridging goes on, with a shorter memory.
    const limits = maxBytes === undefined ? {} : { max_bytes: maxBytes, discard: DiscardPolicy.Old };
    const wanted = { ...config, max_age: maxAge, ...limits };
    if (
      wanted.max_age === config.max_age &&
      wanted.max_bytes === config.max_bytes &&
      wanted.discard === config.discard
    )
      return;
    // The server refuses a duplicate window longer than the entries live.
    const duplicateWindow =
      maxAge === 0 ? config.duplicate_window : Math.min(config.duplicate_window, maxAge);
    await this.jsm.streams.update(config.name, { ...wanted, duplicate_window: duplicateWindow });
  }

  async answers(timeoutMs: number): Promise<boolean> {
    if (this.disconnected || this.nc.isClosed() || this.nc.isDraining()) return false;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([this.nc.rtt().then(() => true), late]);
    } catch {
      // The client refuses a round trip it cannot make (closed meanwhile): that is the answer.
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    if (!this.nc.isClosed()) await this.nc.drain();
  }
}

function toBusMessage(msg: JsMsg): BusMessage {
  const headers: Record<string, string> = {};
  if (msg.headers !== undefined) {
    for (const [key, values] of msg.headers) headers[key] = values[0] ?? "";
  }
  return {
    subject: msg.subject,
    data: msg.data,
    headers,
    deliveryCount: msg.info.deliveryCount,
    seq: msg.seq,
  };
}

function isNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.status === 404;
}

function asTransient(cause: unknown, message: string): TransientError {
  return new TransientError("FG_BUS_UNAVAILABLE", message, { cause });
}

/** Node's codes for a server certificate that does not verify (a wrong CA, a name it is not for, expiry). */
const certificateRejections = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/**
 * Why connecting failed, typed: a certificate or credentials that retrying cannot fix are permanent; anything
 * else (unreachable, refused) is the transient FG_BUS_UNAVAILABLE.
 */
function connectFailure(servers: string, cause: unknown): Error {
  if (cause instanceof AuthorizationError)
    return new PermanentError("FG_BUS_AUTH_REJECTED", `NATS at ${servers} refused the credentials`, {
      cause,
    });
  const code = (cause as { code?: unknown } | null)?.code;
  if (typeof code === "string" && certificateRejections.has(code))
    return new PermanentError(
      "FG_BUS_TLS_REJECTED",
      `the TLS certificate of NATS at ${servers} does not verify (${code})`,
      { cause, detail: { tlsCode: code } },
    );
  return new TransientError("FG_BUS_UNAVAILABLE", `cannot connect to NATS at ${servers}`, { cause });
}
