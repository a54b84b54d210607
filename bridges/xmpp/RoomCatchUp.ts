/**
 * Catching up with what rooms received while the bridge was away or the bus could not store it: their
 * archives (XEP-0313) from the last stanza-id bridged, and rooms that fall behind the bus left to that.
 */
import type { Logger } from "pino";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import { CatchUpCursors } from "../kit/CatchUpCursors.js";
import { catchUpMessages, catchUpRuns } from "../kit/catchUpMetrics.js";
import type { InputQueue } from "../kit/InputQueue.js";
import { NotStoredError } from "../kit/untilStored.js";
import { NS } from "./namespaces.js";
import type { ArchivedMessage, ArchivePage, RoomArchive } from "./RoomArchive.js";
import { isDefinite } from "./stanzaErrors.js";
import type { Stored } from "./stored.js";
import { stanzaIdOf } from "./toNormalisedEvent.js";
import { xml, type XmlElement } from "./XmppComponent.js";

export interface RoomCatchUpDeps {
  archive: Pick<RoomArchive, "page">;
  /** The bridge's own state, which keeps each room's cursor. */
  state: KeyValueStore;
  /** Each room's queue of messages to bridge, live or archived. */
  perRoom: InputQueue;
  stored: Stored;
  /** Aborted when the bridge stops. */
  stopping: AbortSignal;
  log: Logger;
  /** Bridges a message read from a room's archive, as a live one is (throws NotStoredError likewise). */
  bridgeArchived: (room: string, archived: ArchivedMessage) => Promise<void>;
}

export class RoomCatchUp {
  /** Per room, the stanza-id of the last message bridged. */
  private readonly cursors: CatchUpCursors<string>;
  /**
   * Rooms whose messages the bus did not store in time: their live messages are left to a catch-up from the
   * room's archive, queued behind them, which starts after the last stanza-id the bus stored.
   */
  private readonly behind = new Set<string>();
  /** Rooms with such a catch-up queued and not yet started. */
  private readonly catchUpQueued = new Set<string>();

  constructor(private readonly deps: RoomCatchUpDeps) {
    this.cursors = new CatchUpCursors(deps.state);
  }

  /** Whether a room fell behind: its live messages are left to the catch-up queued (see fallBehind). */
  isBehind(room: string): boolean {
    return this.behind.has(room);
  }

  /**
   * Catches up with a room's archive, retrying while the bus cannot store what it reads. Not stored in time,
   * the room falls behind and another catch-up is queued; an archive that refuses ends the room's catch-up,
   * and says what that leaves unbridged.
   */
  async catchUpOrFallBehind(room: string): Promise<void> {
    try {
      await this.deps.stored(() => this.catchUp(room), { room });
      catchUpRuns.add(1, { network: "xmpp", outcome: "done" });
      if (this.behind.delete(room))
        this.deps.log.info({ room }, "the room's messages are bridged live again");
    } catch (error) {
      if (error instanceof NotStoredError) {
        catchUpRuns.add(1, { network: "xmpp", outcome: "behind" });
        this.fallBehind(room, error);
        return;
      }
      catchUpRuns.add(1, { network: "xmpp", outcome: "failed" });
      this.behind.delete(room);
      this.deps.log.error(
        { room, err: error },
        "cannot catch up with the room's archive: what it received since the last message bridged is not bridged",
      );
    }
  }

  /**
   * The bus did not store a room's message in time, or too many wait: the room's live messages are left to
   * its archive until a catch-up, queued behind every message already waiting, has read them. When the
   * bridge is stopping, the next start's catch-up does that.
   */
  fallBehind(room: string, error: unknown): void {
    const { stopping, perRoom, log } = this.deps;
    if (stopping.aborted) return;
    if (!this.behind.has(room)) {
      this.behind.add(room);
      log.error(
        { room, err: error },
        "the bus did not store the room's messages in time: they are read from the room's archive once it does",
      );
    }
    if (this.catchUpQueued.has(room)) return;
    this.catchUpQueued.add(room);
    perRoom.run(room, async () => {
      this.catchUpQueued.delete(room);
      if (this.behind.has(room) && !stopping.aborted) await this.catchUpOrFallBehind(room);
    });
  }

  /**
   * Leaves a live message of a room that fell behind to the catch-up queued (see fallBehind): the room put
   * it in its archive before sending it. One without a stanza-id (a room that keeps no archive) is lost, and
   * that is logged.
   */
  leaveToArchive(roomJid: string, message: XmlElement): void {
    let archived: boolean;
    try {
      archived = stanzaIdOf(message, roomJid) !== undefined;
    } catch {
      // An id past the bound: the catch-up reads it, and refuses it as it would have live.
      archived = true;
    }
    if (!archived)
      this.deps.log.error(
        { room: roomJid, from: message.attrs["from"] },
        "message not bridged: the bus did not store the room's messages in time, and the room keeps no archive to read it from",
      );
  }

  /**
   * Where catching up resumes: the last stanza-id bridged (or deliberately passed over) in a room. Moved only
   * once the bus has stored the message, never past one it has not.
   */
  async markBridged(room: string, stanzaId: string | undefined): Promise<void> {
    if (stanzaId !== undefined) await this.cursors.set(room, stanzaId);
  }

  /**
   * Bridges what the room received while the bridge was away: its archive (XEP-0313) after the last
   * stanza-id bridged, page by page. A room never bridged before starts from now.
   */
  private async catchUp(room: string): Promise<void> {
    const { archive, log } = this.deps;
    let after = await this.cursors.get(room);
    if (after === undefined) {
      if (this.behind.has(room))
        log.error(
          { room },
          "messages not bridged: the bus stored none of the room's messages yet, so there is no point in its archive to read them again from",
        );
      return;
    }
    let caughtUp = 0;
    for (;;) {
      const { page, fin }: ArchivePage = await archive
        .page(room, xml("after", {}, after))
        .catch((error: unknown) => {
          // An archive that answers no (it has no archive, or no longer the last id bridged) will not
          // answer yes later; no answer, or a "wait", may.
          if (!isDefinite(error)) throw error;
          throw new PermanentError(
            "FG_PEER_REFUSED",
            `the archive of ${room} refuses to give what follows ${after}`,
            {
              cause: error,
            },
          );
        });
      // One the bus does not store ends the catch-up, before any later one moves the room's catch-up point
      // past it.
      for (const archived of page) {
        await this.deps.bridgeArchived(room, archived);
      }
      caughtUp += page.length;
      if (page.length > 0) catchUpMessages.add(page.length, { network: "xmpp" });
      const last = fin?.getChild("set", NS.rsm)?.getChildText("last");
      if (fin?.attrs["complete"] === "true" || last === null || last === undefined || last === after) break;
      after = last;
    }
    log.info({ room, archived: caughtUp }, "caught up with the room's archive");
  }
}
