/** A delivery as an XMPP group chat message from the sender's puppet. Pure. */
import type { Delivery } from "../../schemas/types.js";
import { NS } from "./namespaces.js";
import { xml, type XmlElement } from "./XmppComponent.js";

/** How a remote person appears in a room: their name and their agency. */
export function puppetNick(delivery: Delivery): string {
  const name = delivery.event.sender.displayName ?? delivery.event.sender.userId;
  return delivery.senderAgency === undefined ? name : `${name} (${delivery.senderAgency.name})`;
}

/** The message body as shown: the marking, where there is one, leads. */
export function shownBody(delivery: Delivery): string {
  const body = delivery.event.content?.body ?? "";
  return delivery.marking === undefined ? body : `[${delivery.marking.label}] ${body}`;
}

export function toGroupchat(delivery: Delivery, from: string, messageId: string): XmlElement {
  return xml(
    "message",
    { type: "groupchat", to: delivery.target.conversation, from, id: messageId },
    xml("body", {}, shownBody(delivery)),
    xml("origin-id", { xmlns: NS.stanzaId, id: messageId }),
  );
}
