import type { Delivery } from "../../schemas/types.js";

/** How a remote person is shown on every network: "Name (Agency)", so that no one mistakes who writes. */
export function puppetName(delivery: Delivery): string {
  const name = delivery.event.sender.displayName ?? delivery.event.sender.userId;
  return delivery.senderAgency === undefined ? name : `${name} (${delivery.senderAgency.name})`;
}
