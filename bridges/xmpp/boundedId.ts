/**
 * Every id the bridge reads from a stanza (a message's own ids, the ids its correction, retraction, reply or
 * reactions name, an occupant-id) is bounded before it is used: ids become message-map keys, and a key built
 * from a 4,000-character id is longer than the NATS control line, which makes nats-server drop the bridge's
 * connection.
 */
import { PermanentError } from "../../schemas/contract/errors.js";

/**
 * The longest id accepted, in code points. Ids are made to be unique, not to carry text: clients and servers
 * use UUIDs (36 characters) or shorter. A native message's two ids (XEP-0359) and its author travel together
 * as the event's message id, which the event schema bounds at 512 characters: 128 each leaves the author room.
 */
export const MAX_ID_LENGTH = 128;

/**
 * `id` if it is within MAX_ID_LENGTH; `what` names it for the sender (e.g. "the corrected message's id").
 * Throws FG_NATIVE_INVALID (a bad request: sending it again cannot help) for a longer one.
 */
export function boundedId(id: string | undefined, what: string): string | undefined {
  // Code points are never more than UTF-16 units: only a long string needs counting.
  if (id === undefined || id.length <= MAX_ID_LENGTH) return id;
  const length = Array.from(id).length;
  if (length <= MAX_ID_LENGTH) return id;
  throw new PermanentError(
    "FG_NATIVE_INVALID",
    `${what} is ${length} characters long, longer than the ${MAX_ID_LENGTH} fedgate accepts`,
    { detail: { condition: "bad-request", id: what, length } },
  );
}
