/**
 * Whether a delivery was attempted before: JetStream hands a delivery out again when its ack was lost (NATS
 * away, the bridge killed), and a native server that cannot refuse a repeat would then show it twice. A
 * bridge takes one delivery of a conversation at a time, so noting the one underway per conversation is
 * enough: a delivery that finds itself noted already was attempted before, and the bridge looks on the
 * native side for what that attempt posted.
 */
import type { Delivery } from "../../schemas/types.js";
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";

/** True when `delivery` was underway in its conversation before; otherwise notes it as underway, then false. */
export async function attemptedBefore(state: KeyValueStore, delivery: Delivery): Promise<boolean> {
  const key = `underway.${keyToken(delivery.target.conversation)}`;
  const underway = await state.get(key);
  if (underway !== undefined && decodeJson(underway.value) === delivery.id) return true;
  await state.put(key, encodeJson(delivery.id));
  return false;
}
