/**
 * A remote person's puppet JID on the bridge's domain. Each remote id gets its own JID, and the JID is the
 * one the server routes back: localparts compare case-insensitively (RFC 7622), so the JID is lower-case.
 */
import type { XmppBridgeConfig } from "./config.types.js";
import { escapeLocalpart } from "./escaping.js";

/** Marks a character that lower-casing changes; written twice where an id itself has it. */
const MARK = "^";

/**
 * `text` in lower case without losing what lower-casing would lose: "C" becomes "^c", a character whose lower
 * case does not lead back to it (the Kelvin sign, "İ") becomes "^#<hex code point>;", and "^" becomes "^^".
 * Text with neither upper case nor "^" is unchanged, so existing puppets keep their JIDs.
 */
function caseMarked(text: string): string {
  let out = "";
  for (const ch of text) {
    const lower = ch.toLowerCase();
    if (ch === MARK) out += MARK + MARK;
    else if (lower === ch) out += ch;
    else if (Array.from(lower).length === 1 && lower.toUpperCase() === ch) out += MARK + lower;
    else out += `${MARK}#${(ch.codePointAt(0) ?? 0).toString(16)};`;
  }
  return out;
}

/**
 * The puppet JID of `userId` of `network`/`instance`: the XEP-0106 escape of "network.instance.userId", its
 * upper case marked (see caseMarked), so that "@Claire:x" and "@claire:x" are two people.
 */
export function puppetJid(
  network: string,
  instance: string,
  userId: string,
  config: Pick<XmppBridgeConfig, "domain">,
): string {
  return `${caseMarked(escapeLocalpart(`${network}.${instance}.${userId}`))}@${config.domain}`;
}
