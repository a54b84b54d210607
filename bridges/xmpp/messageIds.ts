/**
 * Every id an XMPP room message has. Corrections (XEP-0308) point at the id its sender gave it; retractions,
 * reactions and replies in a room point at the stanza-id the room assigned (XEP-0359). The message map keeps
 * both in one native id, and each alone as an alias that finds the message (the packed id itself finds nothing).
 */
import type { NativeMessage } from "../kit/AdapterRuntime.js";

export interface XmppMessageIds {
  /** The sender's id: origin-id, or the id attribute. */
  originId?: string;
  /** The room's stanza-id. */
  stanzaId?: string;
  /**
   * Who wrote it, the only one who may correct or retract it: the puppet, for a message fedgate posted; the
   * sender's user id (as its events name them), for a native user's. Absent where it was not recorded.
   */
  author?: string;
}

export function toNativeMessage(ids: XmppMessageIds): NativeMessage | undefined {
  const aliases = [ids.stanzaId, ids.originId].filter((id): id is string => id !== undefined && id !== "");
  if (aliases.length === 0) return undefined;
  return { id: JSON.stringify({ o: ids.originId, s: ids.stanzaId, a: ids.author }), aliases, packed: true };
}

/** The ids inside a native id; a bare id (from elsewhere) is taken as both. */
export function fromNativeId(nativeId: string): XmppMessageIds {
  try {
    const parsed = JSON.parse(nativeId) as unknown;
    if (typeof parsed === "object" && parsed !== null) {
      const { o, s, a } = parsed as { o?: unknown; s?: unknown; a?: unknown };
      return {
        ...(typeof o === "string" ? { originId: o } : {}),
        ...(typeof s === "string" ? { stanzaId: s } : {}),
        ...(typeof a === "string" ? { author: a } : {}),
      };
    }
  } catch {
    // not ours: a bare id
  }
  return { originId: nativeId, stanzaId: nativeId };
}
