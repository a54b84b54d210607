/**
 * Why a user may not speak for the agency, or a room may not be bridged, in words for them. Each is
 * undefined when nothing stands in the way.
 */
import { isRecord } from "../kit/isRecord.js";
import { isUserId, serverOf } from "./matrixIds.js";

/** Why a room may not be bridged, in words for the room; undefined when it may. */
export type RoomRefusal = string | undefined;

/** Tchap's rule for who may join a room; "restricted" keeps out users of other servers. */
export const ACCESS_RULES_STATE = "im.vector.room.access_rules";

export const ENCRYPTED_REFUSAL = "it is end-to-end encrypted, and fedgate cannot read encrypted messages";

export const ENCRYPTED_NOTICE =
  "This room is end-to-end encrypted. fedgate cannot read encrypted messages, so nothing from this room is bridged any more.";

/**
 * Why a user may not speak for the agency through the bridge, in words for them; undefined when they may:
 * a user of one of userServers.
 */
export function outsiderRefusal(userServers: readonly string[], userId: string): string | undefined {
  const server = serverOf(userId);
  if (server !== undefined && userServers.includes(server)) return undefined;
  return `fedgate bridges only users of ${userServers.join(" or ")}, and ${userId} is not one`;
}

/** Why a room of `server` may not be joined (a server outside roomServers, or none known); else undefined. */
export function foreignRoomRefusal(roomServers: readonly string[], server: string | undefined): RoomRefusal {
  if (server !== undefined && roomServers.includes(server)) return undefined;
  return `fedgate joins only rooms of ${roomServers.join(" or ")}, and this room is ${server === undefined ? "of no server it knows" : `of ${server}`}`;
}

/** The room state a room's refusal is read from. */
export interface RefusalState {
  /** The content of Tchap's access rules. */
  rules: Record<string, unknown> | undefined;
  /** The whole m.room.create event. */
  createEvent: Record<string, unknown> | undefined;
  /** The content of m.room.encryption. */
  encryption: Record<string, unknown> | undefined;
}

/**
 * Why a room may not be bridged, read from the room's state: a server outside roomServers, Tchap's rules,
 * no federation, encryption.
 */
export function refusalOfRoomState(
  roomServers: readonly string[],
  room: string,
  { rules, createEvent, encryption }: RefusalState,
): RoomRefusal {
  const creator = createEvent?.["sender"];
  const server =
    serverOf(room) ?? (typeof creator === "string" && isUserId(creator) ? serverOf(creator) : undefined);
  const foreign = foreignRoomRefusal(roomServers, server);
  if (foreign !== undefined) return foreign;
  const create = isRecord(createEvent?.["content"]) ? createEvent["content"] : undefined;
  if (rules?.["rule"] === "restricted")
    return "its access rule is restricted, so it refuses users from outside servers, and every person fedgate brings in comes from another agency";
  if (create?.["m.federate"] === false)
    return "it was created without federation (m.federate: false), so no one from outside can ever join it";
  if (encryption !== undefined) return ENCRYPTED_REFUSAL;
  return undefined;
}
