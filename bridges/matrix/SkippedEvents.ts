/**
 * Events the homeserver never sent the bridge. Synapse keeps what it has yet to send an application service
 * in memory, so a restart loses it (element-hq/synapse#11637), and an event that comes in as a recovery from
 * an outage ends can be stored in a transaction no one sends. Each room's latest native event handled is
 * kept; a native event that follows others the bridge never saw finds them in the room's timeline, between
 * the two. The bridge's own events (its ghosts', its bot's) are passed over: they keep arriving after any
 * the homeserver skipped.
 */
import type { Logger } from "../../gateway/log.js";
import { decodeJson, encodeJson, keyToken, type KeyValueStore } from "../../gateway/stores/KeyValueStore.js";
import { BoundedMap } from "../kit/BoundedMap.js";
import type { MatrixClient } from "./MatrixClient.js";

type Json = Record<string, unknown>;

/** Rooms whose latest handled event is kept in memory (all are in the store). */
const CACHE_SIZE = 5000;
/** The first page is small: the event before is nearly always the latest handled. */
const FIRST_PAGE = 5;
const PAGE = 50;
/**
 * How far back the latest handled event is looked for. Farther back, the timeline's order is not the order
 * the homeserver sent (events from other servers that came late): nothing is taken for skipped.
 */
const LOOKBACK = 200;

export class SkippedEvents {
  /** Latest handled event by room; null: none. */
  private readonly latest = new BoundedMap<string, string | null>(CACHE_SIZE);

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

  /** Notes `eventId`, a native user's, as the room's latest native event handled (bridged or refused). */
  async handled(room: string, eventId: string): Promise<void> {
    if (this.latest.get(room) === eventId) return;
    await this.state.put(this.key(room), encodeJson(eventId));
    this.latest.set(room, eventId);
  }

  private async latestHandled(room: string): Promise<string | undefined> {
    let known = this.latest.get(room);
    if (known === undefined) {
      const entry = await this.state.get(this.key(room));
      known = entry === undefined ? null : (decodeJson(entry.value) as string);
      this.latest.set(room, known);
    }
    return known ?? undefined;
  }

  /**
   * The room's native events after its latest handled one and before `eventId`, oldest first: those the
   * homeserver skipped. None when no event of the room was handled yet, or the latest is not within LOOKBACK.
   */
  async before(room: string, eventId: string): Promise<Json[]> {
    const last = await this.latestHandled(room);
    if (last === undefined) return [];
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
        if (event["event_id"] === last) {
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
      "the room's latest handled event is not among the events before this one; none is taken for skipped",
    );
    return [];
  }
}
