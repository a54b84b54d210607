/**
 * A Matrix room event as a normalised event. Pure but for what the bridge knows, which comes in as lookups:
 * which gateway event a Matrix event is, and the description (with hash) of a file.
 */
import type { Attachment, EventContent, EventSender, NormalisedEvent } from "../../schemas/types.js";
import { asEarlierEdit } from "../../schemas/contract/earlierEdits.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { withoutXmlForbidden } from "../kit/cleanText.js";
import { toEventHtml } from "../kit/eventHtml.js";
import { safeFileName } from "../kit/fetchAttachment.js";
import { readEncryptedFile, type AttachmentKeys } from "./crypto/encryptedAttachment.js";
import {
  EventType,
  htmlFormat,
  isMarkingId,
  markingContentKey,
  MsgType,
  RelType,
  type MatrixEvent,
} from "./matrixEvents.js";
import { isRecord } from "../kit/isRecord.js";

/** A file of a media message, as its event describes it. */
export interface MatrixMedia {
  mxc: string;
  name: string;
  mediaType?: string;
  size?: number;
  /** An encrypted attachment's key: what is at `mxc` is its ciphertext. */
  keys?: AttachmentKeys;
}

export interface InboundContext {
  /** The network instance, e.g. "tchap". */
  instance: string;
  /** The endpoint's conversation: the room id, or a direct conversation's id. */
  conversation: string;
  /** Who sent it, with their name and picture link where known; the name is cut to the schema's length. */
  sender: EventSender;
  /** The gateway event id to use. */
  eventId: string;
  /** The room's marking, from its eu.fedgate.marking state. */
  roomMarking?: string;
  /** Largest body in UTF-8 bytes; a larger one is refused. */
  maxBodyBytes: number;
  /** The gateway event id of a Matrix event fedgate already knows, else undefined. */
  eventIdOf(matrixEventId: string): Promise<string | undefined>;
  /** Describes a file of a media message (the caller downloads it to hash it). */
  describeMedia(media: MatrixMedia): Promise<Attachment>;
}

/** event.schema.json: content.html maxLength. */
const maxHtmlLength = 131_072;
/** event.schema.json: content.reaction maxLength, in code points as the validator counts. */
const maxReactionLength = 64;
/** event.schema.json: sender.displayName maxLength, in code points. */
const maxDisplayNameLength = 256;

const mediaTypes: ReadonlySet<string> = new Set([MsgType.image, MsgType.file, MsgType.audio, MsgType.video]);

function invalid(event: MatrixEvent, message: string, reason: string): PermanentError {
  return new PermanentError("FG_NATIVE_INVALID", `Matrix event ${event.event_id}: ${message}`, {
    detail: { reason, eventId: event.event_id, type: event.type },
  });
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

function cut(text: string, length: number): string {
  return codePoints(text) <= length ? text : Array.from(text).slice(0, length).join("");
}

/**
 * The body without the quote of the message replied to, which clients before Matrix v1.13 put first:
 * "> <@author> text" lines, then a blank line. Only a quote that starts with the author is one.
 */
export function withoutReplyFallback(body: string): string {
  if ((!body.startsWith("> <") && !body.startsWith("> * <")) || !body.includes("\n")) return body;
  let rest = body;
  while (rest.startsWith("> ")) {
    const newline = rest.indexOf("\n");
    if (newline === -1) return "";
    rest = rest.slice(newline + 1);
  }
  return rest.startsWith("\n") ? rest.slice(1) : rest;
}

/** What one message content says: text, formatted text, a file. */
interface Said {
  body?: string;
  html?: string;
  media?: MatrixMedia;
}

function checkedBody(event: MatrixEvent, body: string, ctx: InboundContext): string {
  const bytes = Buffer.byteLength(body, "utf8");
  if (bytes > ctx.maxBodyBytes) {
    throw invalid(event, `the body has ${bytes} bytes; the limit is ${ctx.maxBodyBytes}`, "body-too-large");
  }
  return body;
}

function htmlOf(event: MatrixEvent, content: Record<string, unknown>): string | undefined {
  const formatted = content["formatted_body"];
  if (content["format"] !== htmlFormat || typeof formatted !== "string") return undefined;
  const html = toEventHtml(formatted);
  if (html.length > maxHtmlLength) {
    throw invalid(
      event,
      `the formatted body has ${html.length} characters; the limit is ${maxHtmlLength}`,
      "html-too-large",
    );
  }
  return html.trim() === "" ? undefined : html;
}

function mediaOf(event: MatrixEvent, content: Record<string, unknown>, body: string): MatrixMedia {
  // An encrypted attachment: `file` holds its url and key (FG_ATTACHMENT_INVALID when malformed).
  const encrypted = content["file"] === undefined ? undefined : readEncryptedFile(content["file"]);
  const url = encrypted?.url ?? content["url"];
  if (typeof url !== "string" || !/^mxc:\/\/[^/]+\/[^/]+$/.test(url)) {
    throw invalid(event, "the file has no mxc:// url", "media-url-invalid");
  }
  const filename = content["filename"];
  const name = typeof filename === "string" && filename.trim() !== "" ? filename : body;
  const info = isRecord(content["info"]) ? content["info"] : {};
  const mimetype = info["mimetype"];
  const size = info["size"];
  return {
    mxc: url,
    // Cleaned as every network's file names are: a bidi override can disguise an extension.
    name: safeFileName(name),
    ...(typeof mimetype === "string" && mimetype !== "" ? { mediaType: mimetype.toLowerCase() } : {}),
    ...(typeof size === "number" && Number.isSafeInteger(size) && size >= 0 ? { size } : {}),
    ...(encrypted === undefined ? {} : { keys: encrypted.keys }),
  };
}

/** One m.room.message content, or an edit's m.new_content, as what it says. */
function said(
  event: MatrixEvent,
  content: Record<string, unknown>,
  ctx: InboundContext,
  isReply: boolean,
): Said {
  const msgtype = content["msgtype"];
  const raw = content["body"];
  if (typeof msgtype !== "string") throw invalid(event, "the message has no msgtype", "msgtype-missing");
  if (typeof raw !== "string") throw invalid(event, "the message has no string body", "body-invalid");
  const body = isReply ? withoutReplyFallback(raw) : raw;
  switch (msgtype) {
    case MsgType.text:
    case MsgType.notice: {
      const html = htmlOf(event, content);
      return { body: checkedBody(event, body, ctx), ...(html === undefined ? {} : { html }) };
    }
    case MsgType.emote: {
      // Emotes travel as IRC and XMPP write them.
      const html = htmlOf(event, content);
      return {
        body: checkedBody(event, `/me ${body}`, ctx),
        ...(html === undefined ? {} : { html: `/me ${html}` }),
      };
    }
    default: {
      if (!mediaTypes.has(msgtype)) {
        throw invalid(event, `msgtype ${msgtype} cannot be bridged`, "msgtype-unknown");
      }
      const media = mediaOf(event, content, body);
      // Matrix v1.10: a body other than the file's name is a caption.
      const filename = content["filename"];
      if (typeof filename !== "string" || filename.trim() === "" || filename === body) return { media };
      const html = htmlOf(event, content);
      return { body: checkedBody(event, body, ctx), ...(html === undefined ? {} : { html }), media };
    }
  }
}

function markingOf(event: MatrixEvent, content: Record<string, unknown>): string | undefined {
  const marking = content[markingContentKey];
  if (marking === undefined) return undefined;
  if (!isMarkingId(marking))
    throw invalid(event, "the message's marking is not a marking id", "marking-invalid");
  return marking;
}

function base(event: MatrixEvent, ctx: InboundContext, marking: string | undefined) {
  return {
    specVersion: "1" as const,
    id: ctx.eventId,
    source: {
      network: "matrix",
      instance: ctx.instance,
      conversation: ctx.conversation,
      messageId: event.event_id,
    },
    sender: {
      ...ctx.sender,
      ...(ctx.sender.displayName === undefined
        ? {}
        : { displayName: cut(ctx.sender.displayName, maxDisplayNameLength) }),
    },
    timestamp: new Date(event.origin_server_ts).toISOString(),
    ...(marking === undefined ? {} : { marking }),
  };
}

/** The event replied to, unless it is only a thread's fallback for clients without threads. */
function replyTargetOf(relates: Record<string, unknown> | undefined): string | undefined {
  if (relates === undefined) return undefined;
  if (relates["rel_type"] === RelType.thread && relates["is_falling_back"] === true) return undefined;
  const inReplyTo = relates["m.in_reply_to"];
  const target = isRecord(inReplyTo) ? inReplyTo["event_id"] : undefined;
  return typeof target === "string" && target !== "" ? target : undefined;
}

async function fromMessage(event: MatrixEvent, ctx: InboundContext): Promise<NormalisedEvent | undefined> {
  const content = event.content;
  const relates = isRecord(content["m.relates_to"]) ? content["m.relates_to"] : undefined;
  if (relates?.["rel_type"] === RelType.replace) {
    const target = relates["event_id"];
    const newContent = content["m.new_content"];
    if (typeof target !== "string" || target === "")
      throw invalid(event, "the edit names no event", "edit-target-missing");
    if (!isRecord(newContent)) throw invalid(event, "the edit has no m.new_content", "edit-content-missing");
    // Only the new content counts: the top-level body is the "* " fallback for clients without edits.
    const edit = said(event, newContent, ctx, false);
    const marking = markingOf(event, newContent) ?? markingOf(event, content) ?? ctx.roomMarking;
    const replaces = await ctx.eventIdOf(target);
    const edited = {
      body: edit.body ?? edit.media?.name ?? "",
      ...(edit.html === undefined ? {} : { html: edit.html }),
    };
    // Past the message horizon, or never bridged: nothing to edit, so it goes as a new message, marked.
    if (replaces === undefined)
      return { ...base(event, ctx, marking), type: "message.created", content: asEarlierEdit(edited) };
    return { ...base(event, ctx, marking), type: "message.edited", content: edited, relations: { replaces } };
  }
  const replyTarget = replyTargetOf(relates);
  const message = said(event, content, ctx, replyTarget !== undefined);
  const marking = markingOf(event, content) ?? ctx.roomMarking;
  const replyTo = replyTarget === undefined ? undefined : await ctx.eventIdOf(replyTarget);
  const attachment = message.media === undefined ? undefined : await ctx.describeMedia(message.media);
  const eventContent: EventContent = {
    ...(message.body === undefined ? {} : { body: message.body }),
    ...(message.html === undefined ? {} : { html: message.html }),
    ...(attachment === undefined ? {} : { attachments: [attachment] }),
  };
  return {
    ...base(event, ctx, marking),
    type: "message.created",
    content: eventContent,
    ...(replyTo === undefined ? {} : { relations: { replyTo } }),
  };
}

async function fromReaction(event: MatrixEvent, ctx: InboundContext): Promise<NormalisedEvent | undefined> {
  const relates = event.content["m.relates_to"];
  if (!isRecord(relates) || relates["rel_type"] !== RelType.annotation)
    throw invalid(event, "the reaction is not an m.annotation", "reaction-invalid");
  const target = relates["event_id"];
  const key = relates["key"];
  if (typeof target !== "string" || target === "")
    throw invalid(event, "the reaction names no event", "reaction-target-missing");
  // What no other network can carry is taken out of every event: a key of nothing else is no key.
  if (typeof key !== "string" || withoutXmlForbidden(key) === "")
    throw invalid(event, "the reaction has no key", "reaction-key-missing");
  const length = codePoints(key);
  if (length > maxReactionLength) {
    throw invalid(
      event,
      `the reaction key has ${length} characters; the limit is ${maxReactionLength}`,
      "reaction-key-too-long",
    );
  }
  const marking = markingOf(event, event.content) ?? ctx.roomMarking;
  const reactsTo = await ctx.eventIdOf(target);
  if (reactsTo === undefined) return undefined;
  return {
    ...base(event, ctx, marking),
    type: "reaction.added",
    content: { reaction: key },
    relations: { reactsTo },
  };
}

async function fromRedaction(event: MatrixEvent, ctx: InboundContext): Promise<NormalisedEvent | undefined> {
  // Room version 11 moved `redacts` into the content; older rooms have it at the top level.
  const inContent = event.content["redacts"];
  if (inContent !== undefined && typeof inContent !== "string")
    throw invalid(event, "the redaction's content.redacts is not a string", "redacts-invalid");
  const target = event.redacts ?? inContent;
  if (target === undefined || target === "")
    throw invalid(event, "the redaction names no event", "redacts-missing");
  const redacts = await ctx.eventIdOf(target);
  if (redacts === undefined) return undefined;
  return {
    ...base(event, ctx, ctx.roomMarking),
    type: "message.deleted",
    relations: { redacts },
  };
}

function displayNameOf(content: unknown): string | undefined {
  const name = isRecord(content) ? content["displayname"] : undefined;
  if (typeof name !== "string" || name.trim() === "") return undefined;
  return cut(name.trim(), maxDisplayNameLength);
}

function fromMember(event: MatrixEvent, ctx: InboundContext): NormalisedEvent | undefined {
  const userId = event.state_key;
  if (userId === undefined || userId === "")
    throw invalid(event, "the membership names no user (state_key)", "state-key-missing");
  const membership = event.content["membership"];
  if (typeof membership !== "string")
    throw invalid(event, "the membership event has no membership", "membership-missing");
  const prevContent = event.unsigned?.["prev_content"];
  const previous = isRecord(prevContent) ? prevContent["membership"] : undefined;
  let type: "member.joined" | "member.left";
  if (membership === "join") {
    // join after join is a new name or avatar, not an arrival.
    if (previous === "join") return undefined;
    type = "member.joined";
  } else if (membership === "leave" || membership === "ban") {
    // Leaving from invite or knock (a refusal, a withdrawal) or a ban after leaving: no one left the conversation.
    if (typeof previous === "string" && previous !== "join") return undefined;
    type = "member.left";
  } else {
    return undefined;
  }
  const displayName = displayNameOf(event.content) ?? displayNameOf(prevContent);
  return {
    ...base(event, ctx, ctx.roomMarking),
    type,
    sender: {
      userId,
      ...(displayName === undefined ? {} : { displayName }),
      ...(ctx.sender.avatarUrl === undefined ? {} : { avatarUrl: ctx.sender.avatarUrl }),
    },
  };
}

/**
 * undefined: nothing to bridge (an event type the bridge does not carry, a profile change, or a reaction or
 * redaction of an event fedgate does not know, past the message horizon or never bridged). Throws
 * FG_NATIVE_INVALID for an event it must refuse.
 */
export async function toNormalisedEvent(
  event: MatrixEvent,
  ctx: InboundContext,
): Promise<NormalisedEvent | undefined> {
  switch (event.type) {
    case EventType.message:
      return fromMessage(event, ctx);
    case EventType.reaction:
      return fromReaction(event, ctx);
    case EventType.redaction:
      return fromRedaction(event, ctx);
    case EventType.member:
      return fromMember(event, ctx);
    default:
      return undefined;
  }
}
