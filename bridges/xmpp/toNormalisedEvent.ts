/**
 * An XMPP group chat message as a normalised event. Pure: what the bridge knows about the room (who is a
 * puppet, who is who) comes in as arguments.
 */
import type { NormalisedEvent } from "../../schemas/types.js";
import { PermanentError } from "../../gateway/errors.js";
import { NS } from "./namespaces.js";
import type { XmlElement } from "./XmppComponent.js";

export interface GroupchatContext {
  instance: string;
  /** The room's bare JID. */
  room: string;
  nick: string;
  /** The occupant's real bare JID, where the room tells the bridge. */
  realJid: string | undefined;
  newEventId: () => string;
  maxBodyBytes: number;
}

/**
 * undefined: nothing to bridge (no body, or a delayed copy from the room's history).
 * Throws FG_NATIVE_INVALID for a message the bridge must refuse.
 */
export function toNormalisedEvent(
  stanza: XmlElement,
  context: GroupchatContext,
): NormalisedEvent | undefined {
  const body = stanza.getChildText("body");
  if (body === null || stanza.getChild("delay", NS.delay) !== undefined) return undefined;
  if (Buffer.byteLength(body, "utf8") > context.maxBodyBytes) {
    throw new PermanentError(
      "FG_NATIVE_INVALID",
      `message from ${context.room}/${context.nick} has a body of ${Buffer.byteLength(body, "utf8")} bytes; the limit is ${context.maxBodyBytes}`,
    );
  }
  // The room's stanza-id is what replies, retractions and reactions in the room point at (XEP-0359).
  const stanzaId = stanza.getChildren("stanza-id", NS.stanzaId).find((el) => el.attrs["by"] === context.room)
    ?.attrs["id"];
  const messageId = stanzaId ?? stanza.attrs["id"];
  return {
    specVersion: "1",
    id: context.newEventId(),
    type: "message.created",
    source: {
      network: "xmpp",
      instance: context.instance,
      conversation: context.room,
      ...(messageId === undefined || messageId === "" ? {} : { messageId }),
    },
    sender: { userId: context.realJid ?? `${context.room}/${context.nick}`, displayName: context.nick },
    content: { body },
    timestamp: new Date().toISOString(),
  };
}
