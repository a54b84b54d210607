/**
 * The Matrix user ID of the ghost that stands for a remote person: `@<prefix><network>_<instance>_<user>`
 * on the bridge's homeserver. The remote user id is mapped as the Matrix spec's appendix on mapping other
 * character sets suggests (upper case to `_` + lower case, `_` to `__`, anything else outside the
 * localpart grammar to `=` and two hex digits a byte), so that every remote id gives a distinct, valid ghost.
 */
import { createHash } from "node:crypto";

/** Matrix caps a user ID at 255 bytes; longer ghosts are cut and end in a digest of the whole. */
const MAX_USER_ID = 255;

export interface GhostNaming {
  prefix: string;
  serverName: string;
}

export function encodeLocalpart(text: string): string {
  let out = "";
  for (const char of text) {
    if (/^[a-z0-9.\-/]$/.test(char)) out += char;
    else if (char === "_") out += "__";
    else if (/^[A-Z]$/.test(char)) out += `_${char.toLowerCase()}`;
    else for (const byte of Buffer.from(char, "utf8")) out += `=${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

export function ghostUserId(
  naming: GhostNaming,
  remote: { network: string; instance: string; userId: string },
): string {
  const localpart = `${naming.prefix}${remote.network}_${remote.instance}_${encodeLocalpart(remote.userId)}`;
  const full = `@${localpart}:${naming.serverName}`;
  if (Buffer.byteLength(full) <= MAX_USER_ID) return full;
  const digest = createHash("sha256").update(localpart).digest("hex").slice(0, 16);
  const room = MAX_USER_ID - Buffer.byteLength(`@=${digest}:${naming.serverName}`);
  return `@${localpart.slice(0, room)}=${digest}:${naming.serverName}`;
}

/** Whether a user ID is one of the bridge's ghosts. */
export function isGhost(naming: GhostNaming, userId: string): boolean {
  return userId.startsWith(`@${naming.prefix}`) && userId.endsWith(`:${naming.serverName}`);
}

export function localpartOf(userId: string): string {
  return userId.slice(1, userId.indexOf(":"));
}
