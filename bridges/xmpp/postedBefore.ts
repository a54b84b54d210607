import type { Logger } from "pino";
import type { Delivery } from "../../schemas/types.js";
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import { attemptedBefore } from "../kit/attemptedBefore.js";
import { bareJid } from "./jids.js";
import type { MucRooms } from "./MucRooms.js";
import { NS } from "./namespaces.js";
import { roomStanzaId, type ArchivedMessage, type RoomArchive } from "./RoomArchive.js";
import { isDefinite } from "./stanzaErrors.js";
import { xml } from "./XmppComponent.js";

/**
 * How many of a room's latest messages a delivery handled again looks through for what it posted before
 * (see postedBefore): the room's word between the first attempt and this one. A server may give fewer a page
 * (Prosody at most 50).
 */
const POSTED_LOOKBACK = 200;

export interface PostedBeforeDeps {
  /** The bridge's own state, where a delivery is noted as underway (attemptedBefore). */
  state: KeyValueStore;
  archive: Pick<RoomArchive, "page">;
  rooms: Pick<MucRooms, "ownNick">;
  log: Logger;
}

/**
 * What an earlier attempt at this delivery posted in its room, of the stanzas `originIds` name: the room's
 * stanza-id (undefined where it gave none) by origin-id. A component's messages are stored by the room as
 * they are sent, with no id a repeat could be refused by, so a delivery handled again (its ack lost as the
 * bus went away, the bridge restarted) would post twice. Before a delivery posts, the bridge notes it as
 * the one underway in its conversation; a delivery found noted already was attempted before, and its
 * stanzas are looked for, by their origin-id, among the room's latest messages in its archive (XEP-0313).
 * Only what `sender`'s occupant sent counts: anyone in the room can write an origin-id. An archive that
 * refuses leaves the delivery to post again, and perhaps twice: better than lost.
 */
export async function postedBefore(
  { state, archive, rooms, log }: PostedBeforeDeps,
  delivery: Delivery,
  sender: string,
  originIds: string[],
): Promise<Map<string, string | undefined>> {
  const posted = new Map<string, string | undefined>();
  const room = delivery.target.conversation;
  if (!(await attemptedBefore(state, delivery))) return posted;
  let looked = 0;
  let before: string | undefined;
  try {
    while (looked < POSTED_LOOKBACK && posted.size < originIds.length) {
      const { page, fin } = await archive.page(room, xml("before", {}, before));
      for (const archived of page) {
        const originId = archived.message.getChild("origin-id", NS.stanzaId)?.attrs["id"];
        if (originId === undefined || !originIds.includes(originId) || !sentBy(rooms, archived, room, sender))
          continue;
        posted.set(originId, roomStanzaId(archived, room));
      }
      looked += page.length;
      const first = fin?.getChild("set", NS.rsm)?.getChildText("first");
      if (fin?.attrs["complete"] === "true" || page.length === 0 || first === null || first === undefined)
        break;
      before = first;
    }
  } catch (error) {
    // No answer, or a "wait": the delivery is tried again later, and looks again.
    if (!isDefinite(error)) throw error;
    log.warn(
      { deliveryId: delivery.id, room, err: error },
      "delivery handled again, and the room's archive refuses to say what it posted before: posted again, perhaps twice",
    );
    return posted;
  }
  log.info(
    { deliveryId: delivery.id, room, found: posted.size },
    "delivery handled again; looked in the room's archive for what it posted before",
  );
  return posted;
}

/**
 * Whether an archived message is `sender`'s (a full JID of fedgate's own): by the real JID, where the
 * archive names it, else by the nick its occupant holds in the room now.
 */
function sentBy(
  rooms: Pick<MucRooms, "ownNick">,
  archived: ArchivedMessage,
  room: string,
  sender: string,
): boolean {
  if (archived.archivedJid !== undefined) return bareJid(archived.archivedJid) === bareJid(sender);
  const nick = rooms.ownNick(room, sender);
  return nick !== undefined && nick !== "" && archived.nick === nick;
}
