/** How what the bridge posts is tied to what caused it, so that a retry posts nothing twice. */
import { createHash } from "node:crypto";

/** Content key of each event a delivery posts: its transaction id, by which a retry finds it in the room. */
export const POSTED_MARKER = "eu.fedgate.txn";

/** A Matrix transaction id for a delivery's n-th call: a retried delivery repeats it, and posts nothing twice. */
export function txnIdFor(deliveryId: string, index: number): string {
  return `fg${createHash("sha256").update(deliveryId).digest("base64url").slice(0, 32)}.${String(index)}`;
}
