import type { Delivery } from "../../schemas/types.js";

/**
 * A delivery back into the very conversation its event came from is the gateway's own notice (a denial
 * explained to the sender): every adapter shows it as from the bridge, never from a puppet.
 */
export function isGatewayNotice({ event, target }: Delivery): boolean {
  return (
    event.source.network === target.network &&
    event.source.instance === target.instance &&
    event.source.conversation === target.conversation
  );
}
