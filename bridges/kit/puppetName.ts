import type { Delivery } from "../../schemas/types.js";
import { cleanName } from "./cleanText.js";

/** How a remote person is shown on every network: "Name (Agency)", so that no one mistakes who writes. */
export function puppetName(delivery: Delivery): string {
  const { displayName, userId } = delivery.event.sender;
  const name = displayName ?? cleanName(userId) ?? "?";
  return delivery.senderAgency === undefined ? name : `${name} (${delivery.senderAgency.name})`;
}
