/**
 * The nicknames fedgate's occupants take in a group chat: a puppet's "Name (Agency)", as a room accepts it
 * and shows it, and the others to fall back on when someone already holds it.
 */
import type { Delivery } from "../../schemas/types.js";
import { puppetName } from "../kit/puppetName.js";

/**
 * What a nickname (an RFC 7622 resourcepart) must not hold, or what would make it read as another: controls,
 * format characters (bidi overrides, zero-width joiners), private-use characters, unpaired surrogates and
 * non-characters. A room refuses a join under a nick with them, and the person's messages would be lost.
 */
const UNFIT = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\uFDD0-\uFDEF\uFFFE\uFFFF]/gu;
/** Spaces other than the plain one (no-break, line and paragraph separators), which nicknames may not hold. */
const SPACES = /\p{Z}+/gu;

function fit(text: string): string {
  return text.replace(UNFIT, "").replace(SPACES, " ").trim();
}

/** The nick the sender of `delivery` speaks under in a room. */
export function puppetNick(delivery: Delivery): string {
  return fit(puppetName(delivery)) || fit(delivery.event.sender.userId) || "(unnamed)";
}

/**
 * The nicks to try, in order: `nick`, then "nick [2]", "nick [3]"... Deterministic, so that a person keeps the
 * same name while the room is the same, and endless: the caller bounds its tries.
 */
export function* nickCandidates(nick: string): Generator<string, never> {
  yield nick;
  for (let n = 2; ; n++) yield `${nick} [${n}]`;
}
