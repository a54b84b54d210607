/**
 * Encrypted events that came before their room key: the homeserver pushes room events and to-device messages
 * (which carry the keys) in separate streams, so a message often arrives a transaction ahead of its key.
 * Such an event waits here, by its room and Megolm session, and is handled again once the key is in. Bounded:
 * at most `maxEvents` wait, `maxPerSender` of one sender, each at most `maxAgeMs` and `MAX_EVENT_BYTES`; one
 * dropped for any of these is logged as undecryptable.
 *
 * Kept in the bridge's state bucket as well as in memory: the transaction that brought an event is
 * acknowledged once it waits here, so the homeserver never sends it again, and a bridge stopped before the key
 * comes finds it there when it starts (load). What is kept is the event as the homeserver sent it, ciphertext.
 */
import { createHash } from "node:crypto";
import { decodeJson, encodeJson, type KeyValueStore } from "../../../gateway/platform/bus/KeyValueStore.js";
import type { Logger } from "../../../gateway/platform/log.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { isRecord } from "../../kit/isRecord.js";

export interface RoomKey {
  roomId: string;
  sessionId: string;
}

/** Largest event the Matrix spec allows; anything larger is not a homeserver's and does not wait. */
const MAX_EVENT_BYTES = 65_536;
/** Keys of waiting events in the state bucket. */
const KEY_PREFIX = "parked.";

/** A waiting event as the bucket keeps it. */
interface StoredParked {
  roomId: string;
  sessionId: string;
  since: number;
  seq: number;
  raw: unknown;
}

interface Parked {
  key: RoomKey;
  raw: unknown;
  since: number;
  /** Arrival order, which several events within one millisecond share no timestamp for. */
  seq: number;
  /** Its key in the state bucket. */
  storeKey: string;
}

/** An event taken out to be handled: forgotten once handled, or given back to wait on when that failed. */
export interface TakenEvent {
  raw: unknown;
  forget: () => Promise<void>;
  giveBack: () => void;
}

export interface ParkedEventsOptions {
  maxEvents: number;
  /** Most events of one sender waiting at once: a room member cannot push everyone else's out. */
  maxPerSender: number;
  maxAgeMs: number;
  store: KeyValueStore;
  log: Logger;
  now?: () => number;
  /**
   * Told of each event given up (its key never came in time, or the bounds left no room), as the homeserver
   * sent it: the bridge dead-letters it for operators and tells its room.
   */
  onDropped?: (raw: unknown, error: PermanentError) => Promise<void>;
}

function keyOf({ roomId, sessionId }: RoomKey): string {
  return `${roomId}\0${sessionId}`;
}

/** One bucket key per event and session: the same event sent again waits once. */
function storeKeyOf(key: RoomKey, json: string): string {
  return `${KEY_PREFIX}${createHash("sha256")
    .update(`${keyOf(key)}\0${json}`)
    .digest("base64url")}`;
}

/** Who sent a waiting event, as the homeserver says; "" when it does not. */
function senderOf(raw: unknown): string {
  const sender = isRecord(raw) ? raw["sender"] : undefined;
  return typeof sender === "string" ? sender : "";
}

function isStoredParked(value: unknown): value is StoredParked {
  if (typeof value !== "object" || value === null) return false;
  const { roomId, sessionId, since, seq } = value as Record<string, unknown>;
  return (
    typeof roomId === "string" &&
    typeof sessionId === "string" &&
    typeof since === "number" &&
    typeof seq === "number"
  );
}

export class ParkedEvents {
  /** Waiting events by room and session, oldest session first (a Map keeps insertion order). */
  private readonly waiting = new Map<string, Parked[]>();
  private count = 0;
  private seq = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: ParkedEventsOptions) {}

  /**
   * Looks for events past their age every `intervalMs`: without it they are given up only when another
   * event waits or a key comes, which a quiet room may not bring for hours.
   */
  sweepEvery(intervalMs: number): void {
    this.stop();
    this.sweeper = setInterval(() => {
      this.expire().catch((error: unknown) => {
        this.options.log.warn({ err: error }, "encrypted Matrix events past their age not given up yet");
      });
    }, intervalMs);
    this.sweeper.unref();
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  get size(): number {
    return this.count;
  }

  /**
   * The events that waited in the bucket when the bridge last stopped, waiting again, in the order they came;
   * to be called before the homeserver can push a key. Those past their age or beyond the bound are dropped.
   */
  async load(): Promise<void> {
    const { store, log } = this.options;
    const found: (StoredParked & { storeKey: string })[] = [];
    for (const storeKey of await store.keys(`${KEY_PREFIX}>`)) {
      const entry = await store.get(storeKey);
      if (entry === undefined) continue;
      let value: unknown;
      try {
        value = entry.value.byteLength <= 2 * MAX_EVENT_BYTES ? decodeJson(entry.value) : undefined;
      } catch (error) {
        log.warn({ err: error, key: storeKey }, "unreadable waiting Matrix event dropped");
      }
      if (isStoredParked(value)) found.push({ ...value, storeKey });
      else await store.delete(storeKey);
    }
    found.sort((a, b) => a.since - b.since || a.seq - b.seq);
    for (const stored of found) {
      if (this.waitingAlready(stored.storeKey)) continue;
      const { roomId, sessionId, raw, since, storeKey } = stored;
      this.add({ key: { roomId, sessionId }, raw, since, seq: this.seq++, storeKey });
    }
    await this.expire();
    while (this.count > this.options.maxEvents) await this.dropOldest("too many events wait for their keys");
    if (this.count > 0) log.info({ count: this.count }, "encrypted Matrix events wait again for their keys");
  }

  /**
   * Keeps the event until its key comes. At a bound, the oldest waiting event makes room: the sender's own
   * oldest when the sender has maxPerSender waiting.
   */
  async park(key: RoomKey, raw: unknown): Promise<void> {
    await this.expire();
    const json = JSON.stringify(raw);
    const since = this.now();
    const parked: Parked = { key, raw, since, seq: this.seq++, storeKey: storeKeyOf(key, json) };
    if (Buffer.byteLength(json, "utf8") > MAX_EVENT_BYTES) {
      await this.report(parked, "it is larger than any Matrix event");
      return;
    }
    if (this.waitingAlready(parked.storeKey)) return;
    const sender = senderOf(raw);
    const senders = [...this.waiting.values()].flat().filter((p) => senderOf(p.raw) === sender);
    const [oldestOfSender] = senders.sort((a, b) => a.seq - b.seq);
    if (oldestOfSender !== undefined && senders.length >= this.options.maxPerSender)
      await this.dropWaiting(oldestOfSender, "its sender has too many events waiting for their keys");
    while (this.count >= this.options.maxEvents) await this.dropOldest("too many events wait for their keys");
    // Stored before the transaction is acknowledged: after that only the bucket holds it.
    const stored: StoredParked = { ...key, since, seq: parked.seq, raw };
    await this.options.store.put(parked.storeKey, encodeJson(stored));
    this.add(parked);
  }

  /** Each room and session events wait for, with the first event that waits for it. */
  waitingFor(): { key: RoomKey; first: unknown }[] {
    return [...this.waiting.values()].flatMap(([first]) =>
      first === undefined ? [] : [{ key: first.key, first: first.raw }],
    );
  }

  /**
   * The events waiting for these keys, in the order they came, no longer waiting. The caller handles them
   * before it forgets them (forget): a bridge stopped in between finds them again.
   */
  async take(keys: readonly RoomKey[]): Promise<TakenEvent[]> {
    await this.expire();
    const events: Parked[] = [];
    for (const key of keys) {
      const list = this.waiting.get(keyOf(key));
      if (list === undefined) continue;
      this.waiting.delete(keyOf(key));
      this.count -= list.length;
      events.push(...list);
    }
    return events
      .sort((a, b) => a.seq - b.seq)
      .map((parked) => ({
        raw: parked.raw,
        forget: () => this.options.store.delete(parked.storeKey),
        giveBack: () => {
          if (!this.waitingAlready(parked.storeKey)) this.add(parked);
        },
      }));
  }

  private add(parked: Parked): void {
    const list = this.waiting.get(keyOf(parked.key)) ?? [];
    // Given back, an event goes before those that came after it.
    list.push(parked);
    list.sort((a, b) => a.seq - b.seq);
    this.waiting.set(keyOf(parked.key), list);
    this.count++;
  }

  private waitingAlready(storeKey: string): boolean {
    for (const list of this.waiting.values()) if (list.some((p) => p.storeKey === storeKey)) return true;
    return false;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async expire(): Promise<void> {
    const limit = this.now() - this.options.maxAgeMs;
    // Out of memory first, all at once: no one takes an event while it is being given up.
    const expired: Parked[] = [];
    for (const [key, list] of this.waiting) {
      const kept = list.filter((parked) => parked.since > limit);
      if (kept.length === list.length) continue;
      expired.push(...list.filter((parked) => parked.since <= limit));
      this.count -= list.length - kept.length;
      if (kept.length === 0) this.waiting.delete(key);
      else this.waiting.set(key, kept);
    }
    for (const parked of expired) await this.drop(parked, "its key never came");
  }

  private async dropOldest(reason: string): Promise<void> {
    const [oldest] = this.waiting.values().next().value ?? [];
    if (oldest !== undefined) await this.dropWaiting(oldest, reason);
  }

  /** Takes a waiting event out of memory, then gives it up. */
  private async dropWaiting(parked: Parked, reason: string): Promise<void> {
    const list = (this.waiting.get(keyOf(parked.key)) ?? []).filter((p) => p !== parked);
    if (list.length === 0) this.waiting.delete(keyOf(parked.key));
    else this.waiting.set(keyOf(parked.key), list);
    this.count--;
    await this.drop(parked, reason);
  }

  /** Hands the event on, then forgets it: a bridge that dies in between hands it on again at its next start. */
  private async drop(parked: Parked, reason: string): Promise<void> {
    await this.report(parked, reason);
    await this.options.store.delete(parked.storeKey);
  }

  /** Logs an event given up and tells onDropped. */
  private async report(parked: Parked, reason: string): Promise<void> {
    const { room_id: room, event_id: eventId } = (parked.raw ?? {}) as {
      room_id?: unknown;
      event_id?: unknown;
    };
    this.options.log.warn(
      {
        code: "FG_NATIVE_UNDECRYPTABLE",
        room: typeof room === "string" ? room.slice(0, 255) : undefined,
        eventId: typeof eventId === "string" ? eventId.slice(0, 255) : undefined,
      },
      `encrypted Matrix event not bridged: ${reason}`,
    );
    await this.options.onDropped?.(
      parked.raw,
      new PermanentError("FG_NATIVE_UNDECRYPTABLE", `the bridge could not decrypt it: ${reason}`),
    );
  }
}
