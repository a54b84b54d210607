/** Deliveries as XMPP messages from the sender's puppet: into a group chat, or to one person. Pure. */
import type { Delivery } from "../../schemas/types.js";
import type { NativeRelations } from "../kit/AdapterRuntime.js";
import { puppetName } from "../kit/puppetName.js";
import { fromNativeId } from "./messageIds.js";
import { NS } from "./namespaces.js";
import { outOfBandElement } from "./outOfBand.js";
import { xml, type XmlElement } from "./XmppComponent.js";

/** The delivery with another body: the text, with what could not be carried said in words. */
export function withBody(delivery: Delivery, body: string): Delivery {
  return { ...delivery, event: { ...delivery.event, content: { ...delivery.event.content, body } } };
}

/** The message body as shown: the marking, where there is one, leads. */
export function shownBody(delivery: Delivery): string {
  const body = delivery.event.content?.body ?? "";
  return delivery.marking === undefined ? body : `[${delivery.marking.label}] ${body}`;
}

/** What a reply quotes for clients without XEP-0461: who wrote the message answered, and what. */
export interface Quote {
  author: string;
  /** Their JID where the reply is read: an occupant JID in a room. */
  jid: string;
  text: string;
}

/** Longest quote, in code points: enough to recognise the message. */
const QUOTE_LENGTH = 200;

/** "> Author: first line\n> second line\n", cut to QUOTE_LENGTH. */
export function quoteOf(quote: Quote): string {
  const chars = Array.from(quote.text.trim());
  const text = chars.length > QUOTE_LENGTH ? `${chars.slice(0, QUOTE_LENGTH).join("")}…` : chars.join("");
  return `${`${quote.author}: ${text}`
    .split("\n")
    .map((line) => `> ${line}`)
    .join("\n")}\n`;
}

/** Where a message goes and from whom. */
export interface MessageAddress {
  /** "groupchat" into a room (XEP-0045), "chat" to one person. */
  type: "groupchat" | "chat";
  /** The room's bare JID, or the person's bare JID. */
  to: string;
  from: string;
  /** The id (and origin-id) the message gets. */
  id: string;
}

/**
 * The id by which a message refers to another. Corrections always name the sender's id (XEP-0308);
 * retractions, reactions and replies name the room's stanza-id in a group chat and the sender's id in a
 * direct chat (XEP-0424, XEP-0444, XEP-0461).
 */
export function referenceId(
  nativeId: string,
  type: MessageAddress["type"],
  what: "correction" | "other",
): string | undefined {
  const ids = fromNativeId(nativeId);
  return what === "correction" || type === "chat" ? ids.originId : ids.stanzaId;
}

function attrsOf(address: MessageAddress): Record<string, string> {
  return { type: address.type, to: address.to, from: address.from, id: address.id };
}

/** XEP-0444: a puppet's whole set of reactions on a message, named by `reactsTo` (see referenceId). */
export function toReactions(address: MessageAddress, reactsTo: string, keys: string[]): XmlElement {
  return xml(
    "message",
    attrsOf(address),
    xml("reactions", { xmlns: NS.reactions, id: reactsTo }, ...keys.map((key) => xml("reaction", {}, key))),
    xml("store", { xmlns: NS.hints }),
  );
}

const RETRACT_FALLBACK =
  "This person attempted to retract a previous message, but your client does not support it.";

/**
 * The stanza for a delivery, or undefined when the relation it needs is unknown in this conversation (the
 * original never reached it): then there is nothing to correct or retract here. In a direct chat the
 * puppet's nickname travels with each message (XEP-0172), as there is no room to show it.
 */
export function toMessage(
  delivery: Delivery,
  relations: NativeRelations,
  address: MessageAddress,
  label?: XmlElement,
  quote?: Quote,
): XmlElement | undefined {
  const attrs = attrsOf(address);
  const originId = xml("origin-id", { xmlns: NS.stanzaId, id: address.id });
  const nick = address.type === "chat" ? xml("nick", { xmlns: NS.nick }, puppetName(delivery)) : undefined;
  const ref = (nativeId: string | undefined, what: "correction" | "other"): string | undefined =>
    nativeId === undefined ? undefined : referenceId(nativeId, address.type, what);
  switch (delivery.event.type) {
    case "message.edited": {
      const original = ref(relations.replaces, "correction");
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
      const original = ref(relations.redacts, "other");
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
      const replyTo = ref(relations.replyTo, "other");
      // The quote leads the body and is marked as a fallback (XEP-0428), so that clients with XEP-0461 hide it.
      const quoted = replyTo === undefined || quote === undefined ? "" : quoteOf(quote);
      return xml(
        "message",
        attrs,
        xml("body", {}, `${quoted}${shownBody(delivery)}`),
        replyTo === undefined ? undefined : xml("reply", { xmlns: NS.reply, id: replyTo, to: quote?.jid }),
        quoted === ""
          ? undefined
          : xml(
              "fallback",
              { xmlns: NS.fallback, for: NS.reply },
              xml("body", { start: "0", end: String(Array.from(quoted).length) }),
            ),
        nick,
        label,
        originId,
      );
    }
  }
}

/**
 * A file the puppet uploaded: its link as the body, so that clients show it inline (they do when the body is
 * exactly the out-of-band URL), and as XEP-0066 data with the file's name.
 */
export function toFileMessage(
  delivery: Delivery,
  address: MessageAddress,
  file: { url: string; name: string },
  label?: XmlElement,
): XmlElement {
  return xml(
    "message",
    attrsOf(address),
    xml("body", {}, file.url),
    outOfBandElement(file.url, file.name),
    address.type === "chat" ? xml("nick", { xmlns: NS.nick }, puppetName(delivery)) : undefined,
    label,
    xml("origin-id", { xmlns: NS.stanzaId, id: address.id }),
  );
}
