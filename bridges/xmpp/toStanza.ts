/** Deliveries as XMPP group chat messages from the sender's puppet. Pure. */
import type { Delivery } from "../../schemas/types.js";
import type { NativeRelations } from "../kit/AdapterRuntime.js";
import { fromNativeId } from "./messageIds.js";
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

/** XEP-0444: a puppet's whole set of reactions on a message. */
export function toReactions(
  room: string,
  from: string,
  messageId: string,
  stanzaId: string,
  keys: string[],
): XmlElement {
  return xml(
    "message",
    { type: "groupchat", to: room, from, id: messageId },
    xml("reactions", { xmlns: NS.reactions, id: stanzaId }, ...keys.map((key) => xml("reaction", {}, key))),
    xml("store", { xmlns: NS.hints }),
  );
}

const RETRACT_FALLBACK =
  "This person attempted to retract a previous message, but your client does not support it.";

/**
 * The stanza for a delivery, or undefined when the relation it needs is unknown in this room (the original
 * never reached it): then there is nothing to correct or retract here.
 */
export function toGroupchat(
  delivery: Delivery,
  relations: NativeRelations,
  from: string,
  messageId: string,
  label?: XmlElement,
): XmlElement | undefined {
  const attrs = { type: "groupchat", to: delivery.target.conversation, from, id: messageId };
  const originId = xml("origin-id", { xmlns: NS.stanzaId, id: messageId });
  switch (delivery.event.type) {
    case "message.edited": {
      const original =
        relations.replaces === undefined ? undefined : fromNativeId(relations.replaces).originId;
      if (original === undefined) return undefined;
      return xml(
        "message",
        attrs,
        xml("body", {}, shownBody(delivery)),
        xml("replace", { xmlns: NS.correction, id: original }),
        label,
        originId,
      );
    }
    case "message.deleted": {
      const original = relations.redacts === undefined ? undefined : fromNativeId(relations.redacts).stanzaId;
      if (original === undefined) return undefined;
      return xml(
        "message",
        attrs,
        xml("retract", { xmlns: NS.retract, id: original }),
        xml("fallback", { xmlns: NS.fallback, for: NS.retract }),
        xml("body", {}, RETRACT_FALLBACK),
        xml("store", { xmlns: NS.hints }),
        originId,
      );
    }
    default: {
      const replyTo = relations.replyTo === undefined ? undefined : fromNativeId(relations.replyTo).stanzaId;
      return xml(
        "message",
        attrs,
        xml("body", {}, shownBody(delivery)),
        replyTo === undefined ? undefined : xml("reply", { xmlns: NS.reply, id: replyTo }),
        label,
        originId,
      );
    }
  }
}
