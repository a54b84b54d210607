/**
 * A delivery as the bus carries it, with the event's bytes as they were published spliced in: one event goes
 * to every target unchanged, and serialising it again per target was the core's largest cost after the NATS
 * client's. The router validated those bytes as an event; they parse to the object it judged, since
 * validation adds nothing to an event (its schema has no defaults).
 */
import type { Delivery } from "../../../schemas/types.js";

const encoder = new TextEncoder();
const OPEN = encoder.encode('{"event":');

export function encodeDelivery(delivery: Omit<Delivery, "event">, eventJson: Uint8Array): Uint8Array {
  // The rest of the delivery's members, after the event's: `{"specVersion":…}` with its "{" made a ",".
  const rest = encoder.encode(JSON.stringify(delivery));
  rest[0] = 0x2c;
  const bytes = new Uint8Array(OPEN.length + eventJson.length + rest.length);
  bytes.set(OPEN, 0);
  bytes.set(eventJson, OPEN.length);
  bytes.set(rest, OPEN.length + eventJson.length);
  return bytes;
}
