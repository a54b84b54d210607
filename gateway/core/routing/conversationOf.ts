import type { BusMessage } from "../../platform/bus/Bus.js";
import { conversationKey } from "../../platform/stores/LinkStore.js";

const parsed = new WeakMap<BusMessage, unknown>();

/**
 * The JSON value of an inbound message, parsed once: the ordering key and the router both read it.
 * Throws SyntaxError when the message is not JSON.
 */
export function inboundJson(message: BusMessage): unknown {
  if (parsed.has(message)) return parsed.get(message);
  const value = JSON.parse(Buffer.from(message.data).toString("utf8")) as unknown;
  parsed.set(message, value);
  return value;
}

/**
 * The conversation an inbound message belongs to, as its ordering key: events of one conversation are
 * handled in turn. Anything unreadable shares one key; the router rejects it in order.
 */
export function conversationOf(message: BusMessage): string {
  try {
    const source = (inboundJson(message) as { source?: Record<string, unknown> } | null)?.source;
    const { network, instance, conversation } = source ?? {};
    if (typeof network === "string" && typeof instance === "string" && typeof conversation === "string") {
      return conversationKey({ network, instance, conversation });
    }
  } catch {
    // not JSON: falls through
  }
  return "";
}
