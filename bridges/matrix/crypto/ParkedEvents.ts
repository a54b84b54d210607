/**
 * Encrypted events that came before their room key: the homeserver pushes room events and to-device messages
 * (which carry the keys) in separate streams, so a message often arrives a transaction ahead of its key.
 * Such an event waits here, by its room and Megolm session, and is handled again once the key is in. Bounded:
 * at most `maxEvents` wait, each at most `maxAgeMs`; one dropped for either is logged as undecryptable.
 *
 * In memory: events waiting when the bridge stops are not handled again after it starts.
 */
import type { Logger } from "../../../gateway/platform/log.js";

export interface RoomKey {
  roomId: string;
  sessionId: string;
}

interface Parked {
  raw: unknown;
  since: number;
  /** Arrival order, which several events within one millisecond share no timestamp for. */
  seq: number;
}

export interface ParkedEventsOptions {
  maxEvents: number;
  maxAgeMs: number;
  log: Logger;
  now?: () => number;
}

function keyOf({ roomId, sessionId }: RoomKey): string {
  return `${roomId}\0${sessionId}`;
}

export class ParkedEvents {
  /** Waiting events by room and session, oldest session first (a Map keeps insertion order). */
  private readonly waiting = new Map<string, Parked[]>();
  private count = 0;
  private seq = 0;

  constructor(private readonly options: ParkedEventsOptions) {}

  get size(): number {
    return this.count;
  }

  /** Keeps the event until its key comes; the oldest waiting event makes room when the bound is reached. */
  park(key: RoomKey, raw: unknown): void {
    this.expire();
    while (this.count >= this.options.maxEvents) this.dropOldest("too many events wait for their keys");
    const list = this.waiting.get(keyOf(key)) ?? [];
    list.push({ raw, since: this.now(), seq: this.seq++ });
    this.waiting.set(keyOf(key), list);
    this.count++;
  }

  /** The events waiting for these keys, in the order they came, no longer waiting. */
  take(keys: readonly RoomKey[]): unknown[] {
    this.expire();
    const events: Parked[] = [];
    for (const key of keys) {
      const list = this.waiting.get(keyOf(key));
      if (list === undefined) continue;
      this.waiting.delete(keyOf(key));
      this.count -= list.length;
      events.push(...list);
    }
    return events.sort((a, b) => a.seq - b.seq).map((parked) => parked.raw);
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private expire(): void {
    const limit = this.now() - this.options.maxAgeMs;
    for (const [key, list] of this.waiting) {
      const kept = list.filter((parked) => parked.since > limit);
      for (const parked of list.filter((p) => p.since <= limit))
        this.logDropped(parked, "its key never came");
      this.count -= list.length - kept.length;
      if (kept.length === 0) this.waiting.delete(key);
      else this.waiting.set(key, kept);
    }
  }

  private dropOldest(reason: string): void {
    const [key, list] = this.waiting.entries().next().value ?? [];
    if (key === undefined || list === undefined) return;
    const dropped = list.shift();
    this.count--;
    if (list.length === 0) this.waiting.delete(key);
    if (dropped !== undefined) this.logDropped(dropped, reason);
  }

  private logDropped(parked: Parked, reason: string): void {
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
  }
}
