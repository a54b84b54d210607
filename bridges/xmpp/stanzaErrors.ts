/** What a failed request to the XMPP server says: a stanza error the server answered, or none (no answer). */
import type { XmlElement } from "./XmppComponent.js";

export interface StanzaErrorLike {
  condition: string;
  type?: string;
  text?: string;
  element?: XmlElement;
}

/** The stanza error behind a failed request (XmppComponent keeps it as the cause), if it was one. */
export function stanzaErrorOf(error: unknown): StanzaErrorLike | undefined {
  for (let current = error; current instanceof Error; current = current.cause) {
    const condition = (current as { condition?: unknown }).condition;
    if (typeof condition === "string") return current as Error & StanzaErrorLike;
  }
  return undefined;
}

/** An answer that settles the question; a timeout, a lost connection or a "wait" error does not. */
export function isDefinite(error: unknown): boolean {
  const stanzaError = stanzaErrorOf(error);
  return stanzaError !== undefined && stanzaError.type !== "wait";
}
