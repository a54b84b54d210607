/** JIDs as the bridge reads them: bare and full, occupants of a room, puppets on its own domain. */

export function bareJid(jid: string): string {
  const slash = jid.indexOf("/");
  return slash < 0 ? jid : jid.slice(0, slash);
}

/** "room@muc/nick" → ["room@muc", "nick"]. */
export function splitOccupant(from: string | undefined): [string | undefined, string | undefined] {
  if (from === undefined) return [undefined, undefined];
  const slash = from.indexOf("/");
  return slash < 0 ? [from, undefined] : [from.slice(0, slash), from.slice(slash + 1)];
}

/** A JID on the bridge's domain other than the bot's: a puppet. */
export function isPuppetJid(jid: string, domain: string): boolean {
  const bare = bareJid(jid);
  const at = bare.indexOf("@");
  return at > 0 && bare.slice(at + 1) === domain && bare.slice(0, at) !== "fedgate";
}

/** A native user may write through the bridge unless their JID, where known, is outside userDomains. */
export function isAllowedUser(realJid: string | undefined, userDomains: readonly string[]): boolean {
  const domain = realJid === undefined ? undefined : bareJid(realJid).split("@")[1];
  return domain === undefined || userDomains.includes(domain);
}
