/**
 * Events the homeserver never sent the bridge. Synapse keeps what it has yet to send an application service
 * in memory, so a restart loses it (element-hq/synapse#11637), and an event that comes in as a recovery from
 * an outage ends can be stored in a transaction no one sends. Each room's latest native events handled are
 * kept; a native event that follows others the bridge never saw finds them in the room's timeline, back to
 * the first it handled. The bridge's own events (its ghosts', its bot's) are passed over: they keep
 * arriving after any the homeserver skipped.
 */
import type { Logger } from "../../gateway/platform/log.js";
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";
import { BoundedMap } from "../kit/BoundedMap.js";
import type { MatrixClient } from "./MatrixClient.js";

type Json = Record<string, unknown>;

/** Rooms whose latest handled events are kept in memory (all are in the store). */
const CACHE_SIZE = 5000;
/**
 * How many of a room's latest native events handled are kept. Sent at once, events can be stored in the
 * timeline in another order than the homeserver sent them: the event before the next is then one of the
 * latest handled, not always the very last.
 */
const RECENT = 20;
/** The first page is small: the event before is nearly always one of the latest handled. */
const FIRST_PAGE = 5;
const PAGE = 50;
/**
 * How far back a handled event is looked for. Farther back, the timeline's order is not the order the
 * homeserver sent (events from other servers that came late): nothing is taken for skipped.
 */
const LOOKBACK = 200;

export class SkippedEvents {
  /** The latest native events handled by room, oldest first. */
  private readonly latest = new BoundedMap<string, string[]>(CACHE_SIZE);

  constructor(
    private readonly state: KeyValueStore,
    private readonly client: MatrixClient,
    /** Whether a user is the bridge's own. */
    private readonly isOwn: (userId: string) => boolean,
    private readonly log: Logger,
  ) {}

  private key(room: string): string {
    return `handled.${keyToken(room)}`;
  }

  /** Notes `eventId`, a native user's, among the room's latest native events handled (bridged or refused). */
  async handled(room: string, eventId: string): Promise<void> {
    const recent = await this.recentlyHandled(room);
    if (recent.includes(eventId)) return;
    const next = [...recent, eventId].slice(-RECENT);
    await this.state.put(this.key(room), encodeJson(next));
    this.latest.set(room, next);
  }

  private async recentlyHandled(room: string): Promise<string[]> {
    let known = this.latest.get(room);
    if (known === undefined) {
      const entry = await this.state.get(this.key(room));
      const stored: unknown = entry === undefined ? [] : decodeJson(entry.value);
      known = Array.isArray(stored) ? stored.filter((id): id is string => typeof id === "string") : [];
      this.latest.set(room, known);
    }
    return known;
  }

  /**
   * The room's native events between the latest handled before `eventId` and it, oldest first: those the
   * homeserver skipped. None when no event of the room was handled yet, or none of those handled is within
   * LOOKBACK.
   */
  async before(room: string, eventId: string): Promise<Json[]> {
    const handled = new Set(await this.recentlyHandled(room));
    if (handled.size === 0) return [];
    const skipped: Json[] = [];
    let from: string | undefined;
    let looked = 0;
    do {
      const page = await this.client.eventsBefore(
        room,
        { eventId, ...(from === undefined ? {} : { from }) },
        from === undefined ? FIRST_PAGE : PAGE,
      );
      for (const event of page.events) {
        const sender = event["sender"];
        if (typeof sender !== "string" || this.isOwn(sender)) continue;
        if (handled.has(event["event_id"] as string)) {
          if (skipped.length > 0)
            this.log.warn(
              { room, eventId, skipped: skipped.length },
              "the homeserver never sent events before this one; they are handled first, from the room's timeline",
            );
          return skipped.reverse();
        }
        skipped.push(event);
      }
      from = page.next;
      looked += page.events.length;
    } while (from !== undefined && looked < LOOKBACK);
    this.log.warn(
      { room, eventId, lookedAt: looked },
      "none of the room's latest handled events is among the events before this one; none is taken for skipped",
    );
    return [];
  }
}
