/**
 * The ids of the stanzas a delivery posts, derived from the delivery's id: the same delivery handled again
 * (JetStream hands it out again when its ack is lost) posts under the same ids, by which the bridge finds in
 * a room's archive what an earlier attempt posted.
 */
import { createHash } from "node:crypto";

/**
 * The id (and XEP-0359 origin-id) of the `index`th stanza a delivery posts: 36 characters or so, whatever
 * the delivery id's length (ids become message-map keys; see boundedId).
 */
export function originIdFor(deliveryId: string, index: number): string {
  return `fg${createHash("sha256").update(deliveryId).digest("base64url").slice(0, 32)}.${String(index)}`;
}
