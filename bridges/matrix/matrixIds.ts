/**
 * Matrix identifiers as the spec's appendix on identifier grammar defines them: a sigil, at most 255 bytes,
 * and for user ids (and room ids of room versions before 12) the server name after the first colon.
 *
 * Every id the bridge reads from an event is checked here before it is used: an id becomes part of KV keys
 * and log lines, and a user id's server decides whether its user may speak through the bridge.
 */

/** The spec caps every identifier (user, room, event id) at 255 bytes, sigil and server name included. */
export const maxIdBytes = 255;

/** server_name: an IPv4 address, a bracketed IPv6 address or a DNS name, with an optional port. */
const serverNamePattern = /^(?:\[[0-9A-Fa-f:.]{2,45}\]|[0-9A-Za-z.-]{1,255})(?::[0-9]{1,5})?$/;
/** Opaque ids (rooms, events): printable ASCII without spaces, as every room version's ids are. */
const opaquePattern = /^[\x21-\x7e]+$/;
/** A user id's localpart: the historical set every server must still accept, printable ASCII but ":". */
const localpartPattern = /^[\x21-\x39\x3b-\x7e]+$/;

function withinLimit(id: string): boolean {
  // ASCII only (the patterns check that), so characters are bytes; the cheap length check comes first.
  return id.length <= maxIdBytes;
}

/** Whether `text` is a server name (`tchap.gouv.fr`, `127.0.0.1:8448`, `[::1]`). */
export function isServerName(text: string): boolean {
  return serverNamePattern.test(text);
}

/** Whether `text` is a user id: `@localpart:server`. */
export function isUserId(text: string): boolean {
  if (!withinLimit(text) || !text.startsWith("@")) return false;
  const colon = text.indexOf(":");
  if (colon < 2) return false;
  return localpartPattern.test(text.slice(1, colon)) && isServerName(text.slice(colon + 1));
}

/** Whether `text` is a room id: `!opaque:server`, or `!opaque` from room version 12 on. */
export function isRoomId(text: string): boolean {
  if (!withinLimit(text) || !text.startsWith("!") || !opaquePattern.test(text.slice(1))) return false;
  const colon = text.indexOf(":");
  return colon === -1 || (colon > 1 && isServerName(text.slice(colon + 1)));
}

/** Whether `text` is an event id: `$opaque:server` (room versions 1 and 2) or `$` and a hash. */
export function isEventId(text: string): boolean {
  return withinLimit(text) && text.startsWith("$") && text.length > 1 && opaquePattern.test(text.slice(1));
}

/**
 * The server a user id belongs to, or a room id names (the server that created the room, before room
 * version 12); undefined when the id names none. The id must have been checked.
 */
export function serverOf(id: string): string | undefined {
  const colon = id.indexOf(":");
  return colon === -1 ? undefined : id.slice(colon + 1);
}

/** An id fit for a log line: one over the spec's limit is cut, so a hostile id cannot flood the log. */
export function loggableId(id: string): string {
  return id.length <= maxIdBytes ? id : `${id.slice(0, 64)}… (${String(id.length)} characters)`;
}
