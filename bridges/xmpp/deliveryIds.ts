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

const POSTED_BY_BRIDGE = /^fg[A-Za-z0-9_-]{32}\.\d{1,4}$/;

/**
 * Whether a message id is one originIdFor gives: the bridge posted it. A bridge killed between posting and
 * recording a message finds it in the room's archive after it restarts, from a puppet not in the room yet;
 * the id tells it is its own. A native user who writes such an id only keeps their own message from being
 * bridged.
 */
export function isPostedByBridge(originId: string | undefined): boolean {
  return originId !== undefined && POSTED_BY_BRIDGE.test(originId);
}
