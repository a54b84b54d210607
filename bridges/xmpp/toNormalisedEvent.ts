/**
 * An XMPP message, from a group chat or a direct chat, as a normalised event. Pure: what the bridge knows (which event a referenced
 * message is, who the occupant is) comes in as arguments.
 */
import type { Attachment, NormalisedEvent } from "../../schemas/types.js";
import { asEarlierEdit } from "../../schemas/contract/earlierEdits.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { boundedId } from "./boundedId.js";
import { type XmppMessageIds } from "./messageIds.js";
import { NS } from "./namespaces.js";
import { outOfBandOf } from "./outOfBand.js";
import type { XmlElement } from "./XmppComponent.js";

/** The native ids a message refers to, before they are looked up in the message map. */
export interface References {
  /** XEP-0308: the corrected message's sender id. */
  replaces?: string;
  /** XEP-0424 (or a moderator's XEP-0425): the retracted message's stanza-id. */
  retracts?: string;
  /** XEP-0461: the stanza-id of the message replied to. */
  repliesTo?: string;
}

/** Throws FG_NATIVE_INVALID for an id longer than MAX_ID_LENGTH. */
export function referencesOf(stanza: XmlElement): References {
  const replaces = boundedId(
    stanza.getChild("replace", NS.correction)?.attrs["id"],
    "the id of the corrected message",
  );
  // XEP-0424 now, or its fastening form of 0.2 and the moderation of XEP-0425 0.2 that wraps it.
  const applyTo = stanza.getChild("apply-to", NS.fasten);
  const retractsV0 =
    applyTo?.getChild("retract", NS.retractV0) ??
    applyTo?.getChild("moderated", NS.moderateV0)?.getChild("retract", NS.retractV0);
  const retracts = boundedId(
    stanza.getChild("retract", NS.retract)?.attrs["id"] ??
      (retractsV0 === undefined ? undefined : applyTo?.attrs["id"]),
    "the id of the retracted message",
  );
  const repliesTo = boundedId(
    stanza.getChild("reply", NS.reply)?.attrs["id"],
    "the id of the message replied to",
  );
  return {
    ...(replaces === undefined ? {} : { replaces }),
    ...(retracts === undefined ? {} : { retracts }),
    ...(repliesTo === undefined ? {} : { repliesTo }),
  };
}

/**
 * XEP-0425: a moderator's retraction, which the room itself sends from its bare JID. Returns the moderator's
 * occupant JID (room@service/nick), or undefined for any other message.
 */
export function moderatorOf(stanza: XmlElement): string | undefined {
  const moderated =
    stanza.getChild("retract", NS.retract)?.getChild("moderated", NS.moderate) ??
    stanza.getChild("apply-to", NS.fasten)?.getChild("moderated", NS.moderateV0);
  return moderated?.attrs["by"];
}

/**
 * Whether `stanza` is a moderator's retraction (XEP-0425) the room itself sent: it comes from the room's own
 * JID, which no occupant can write as, and may retract anyone's message.
 */
export function isModeration(stanza: XmlElement, room: string): boolean {
  return stanza.attrs["from"] === room && moderatorOf(stanza) !== undefined;
}

/** XEP-0421: the room's stable id for an occupant, whatever nick they use. Throws for an over-long one. */
export function occupantIdOf(stanza: XmlElement): string | undefined {
  const id = boundedId(stanza.getChild("occupant-id", NS.occupantId)?.attrs["id"], "the occupant-id");
  return id === undefined || id === "" ? undefined : id;
}

/** XEP-0172: the nickname a sender gives in a direct chat. */
export function nickOf(stanza: XmlElement): string | undefined {
  const nick = stanza.getChildText("nick", NS.nick)?.trim();
  return nick === undefined || nick === "" ? undefined : nick.slice(0, 255);
}

/**
 * The most reactions one person may have on one message. Each stanza carries a person's whole set, and every
 * difference from the set before becomes an event on every linked network: a stanza may cause at most twice
 * this many.
 */
export const MAX_REACTIONS = 20;
/** The longest reaction, in code points, as the event schema allows. */
const MAX_REACTION_LENGTH = 64;

/**
 * XEP-0444: the reactions a user now has on a message (their whole set), by the message's stanza-id. Throws
 * FG_NATIVE_INVALID for more than MAX_REACTIONS, a reaction longer than the schema allows, or an over-long id.
 */
export function reactionsOf(stanza: XmlElement): { to: string; keys: string[] } | undefined {
  const reactions = stanza.getChild("reactions", NS.reactions);
  const to = boundedId(reactions?.attrs["id"], "the id of the message reacted to");
  if (reactions === undefined || to === undefined) return undefined;
  const elements = reactions.getChildren("reaction");
  if (elements.length > MAX_REACTIONS) {
    throw new PermanentError(
      "FG_NATIVE_INVALID",
      `${elements.length} reactions on one message; fedgate carries at most ${MAX_REACTIONS} from one person`,
      { detail: { reactions: elements.length } },
    );
  }
  const keys = elements.map((r) => r.text().trim()).filter((k) => k.length > 0);
  for (const key of keys) {
    const length = Array.from(key).length;
    if (length > MAX_REACTION_LENGTH) {
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `a reaction of ${length} characters; the limit is ${MAX_REACTION_LENGTH}`,
        { detail: { length } },
      );
    }
  }
  return { to, keys: [...new Set(keys)] };
}

/**
 * The id the room gave this message (XEP-0359): only a stanza-id by the room itself counts, as the room
 * removes any other that claims to be its own. Throws for an over-long one.
 */
export function stanzaIdOf(stanza: XmlElement, room: string): string | undefined {
  return boundedId(
    stanza.getChildren("stanza-id", NS.stanzaId).find((el) => el.attrs["by"] === room)?.attrs["id"],
    "the room's stanza-id",
  );
}

/** The ids this message has: the sender's and the room's. Throws for an over-long one. */
export function idsOf(stanza: XmlElement, room: string): XmppMessageIds {
  const stanzaId = stanzaIdOf(stanza, room);
  const originId = boundedId(
    stanza.getChild("origin-id", NS.stanzaId)?.attrs["id"] ?? stanza.attrs["id"],
    "the message's id",
  );
  return {
    ...(originId === undefined || originId === "" ? {} : { originId }),
    ...(stanzaId === undefined ? {} : { stanzaId }),
  };
}

/** The body without the fallback quote a reply carries for older clients (XEP-0428; offsets in code points). */
export function withoutReplyFallback(stanza: XmlElement, body: string): string {
  const fallback = stanza
    .getChildren("fallback", NS.fallback)
    .find((f) => f.attrs["for"] === NS.reply)
    ?.getChild("body");
  if (fallback === undefined) return body;
  // Offsets count Unicode code points, which is what Array.from iterates.
  const chars = Array.from(body);
  const start = Number(fallback.attrs["start"] ?? 0);
  const end = Number(fallback.attrs["end"] ?? chars.length);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > chars.length || start > end)
    return body;
  return [...chars.slice(0, start), ...chars.slice(end)].join("");
}

export interface NativeMessageContext {
  instance: string;
  /** The room's bare JID, or the direct conversation's id. */
  conversation: string;
  /** Who wrote it, as the bridge identified them. */
  sender: { userId: string; displayName: string };
  /** This message's ids, encoded as the message map keeps them. */
  messageId: string | undefined;
  /** The marking its security label stands for. */
  marking?: string;
  /** Event ids of the messages referred to, where the message map knows them. */
  replaces?: string;
  /**
   * A correction of a message the message map does not know (past the message horizon, or never bridged):
   * nothing to correct, so it goes as a new message marked as an edit (earlierEdits.ts).
   */
  correctsForgotten?: boolean;
  redacts?: string;
  replyTo?: string;
  /** The files its out-of-band links (XEP-0066) point at, as the bridge described them. */
  attachments?: Attachment[];
  newEventId: () => string;
  maxBodyBytes: number;
}

/**
 * undefined: nothing to bridge (no body, or a delayed copy from the room's history). Throws FG_NATIVE_INVALID
 * for a message it must refuse.
 */
export function toNormalisedEvent(
  stanza: XmlElement,
  context: NativeMessageContext,
): NormalisedEvent | undefined {
  if (stanza.getChild("delay", NS.delay) !== undefined) return undefined;
  const base = {
    specVersion: "1" as const,
    id: context.newEventId(),
    source: {
      network: "xmpp",
      instance: context.instance,
      conversation: context.conversation,
      ...(context.messageId === undefined ? {} : { messageId: context.messageId }),
    },
    sender: context.sender,
    timestamp: new Date().toISOString(),
    ...(context.marking === undefined ? {} : { marking: context.marking }),
  };
  if (context.redacts !== undefined) {
    return { ...base, type: "message.deleted", relations: { redacts: context.redacts } };
  }
  const raw = stanza.getChildText("body");
  const attachments = context.attachments ?? [];
  if (raw === null && attachments.length === 0) return undefined;
  const bytes = Buffer.byteLength(raw ?? "", "utf8");
  if (bytes > context.maxBodyBytes) {
    throw new PermanentError(
      "FG_NATIVE_INVALID",
      `message from ${context.sender.userId} has a body of ${bytes} bytes; the limit is ${context.maxBodyBytes}`,
    );
  }
  if (context.replaces !== undefined) {
    if (raw === null) return undefined;
    return {
      ...base,
      type: "message.edited",
      content: { body: raw },
      relations: { replaces: context.replaces },
    };
  }
  if (context.correctsForgotten === true) {
    if (raw === null) return undefined;
    return { ...base, type: "message.created", content: asEarlierEdit({ body: raw }) };
  }
  // The quote goes whether or not the message answered is known: of one fedgate does not know, no marking
  // can be checked, so nothing of it may travel.
  let body = raw === null ? raw : withoutReplyFallback(stanza, raw);
  // A file's message carries its link as the body too, for clients without XEP-0066: that is no text.
  const links = new Set(outOfBandOf(stanza).map((link) => link.url));
  if (body !== null && attachments.length > 0 && links.has(body.trim())) body = null;
  return {
    ...base,
    type: "message.created",
    content: {
      ...(body === null ? {} : { body }),
      ...(attachments.length === 0 ? {} : { attachments }),
    },
    ...(context.replyTo === undefined ? {} : { relations: { replyTo: context.replyTo } }),
  };
}
