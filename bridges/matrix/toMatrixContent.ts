/**
 * A normalised event as the Matrix events a ghost sends for it. Pure: the files are uploaded and the
 * relations resolved to Matrix event ids before.
 */
import type { Attachment, NormalisedEvent } from "../../schemas/types.js";
import type { NativeRelations } from "../kit/AdapterRuntime.js";
import { escapeHtml } from "../../gateway/platform/escapeHtml.js";
import { toEventHtml } from "../kit/eventHtml.js";
import type { EncryptedFile } from "./crypto/encryptedAttachment.js";
import { EventType, htmlFormat, markingContentKey, MsgType, RelType } from "./matrixEvents.js";

/** Where an uploaded file is: its mxc URI, or in an encrypted room the encrypted attachment's `file`. */
export type UploadedFile = string | EncryptedFile;

export interface OutboundOptions {
  /** Each attachment already uploaded, by attachment url. */
  uploaded: ReadonlyMap<string, UploadedFile>;
  /** How the marking is shown in the text, by marking id; default the id. */
  markingLabel?: (marking: string) => string;
}

/** One event to send: its type and content. */
export interface MatrixContent {
  type: string;
  content: Record<string, unknown>;
}

const emotePrefix = "/me ";

/** A message's text as m.room.message content. */
type TextContent = {
  msgtype: string;
  body: string;
  format?: string;
  formatted_body?: string;
  [markingContentKey]?: string;
  "m.relates_to"?: unknown;
};

/** The text of a message as Matrix content: msgtype, body, formatted_body, marking. */
function textContent(
  event: NormalisedEvent,
  options: OutboundOptions,
  notes: readonly string[] = [],
): TextContent | undefined {
  let body = event.content?.body ?? "";
  let html = event.content?.html === undefined ? "" : toEventHtml(event.content.html);
  if (body === "" && html.trim() === "" && notes.length === 0) return undefined;
  let msgtype: string = event.type === "notice" ? MsgType.notice : MsgType.text;
  if (event.type !== "notice" && body.startsWith(emotePrefix)) {
    msgtype = MsgType.emote;
    body = body.slice(emotePrefix.length);
    if (html.startsWith(emotePrefix)) html = html.slice(emotePrefix.length);
  }
  if (notes.length > 0) {
    body = [...(body === "" ? [] : [body]), ...notes].join("\n");
    if (html.trim() !== "") html = [html, ...notes.map(escapeHtml)].join("<br>");
  }
  const marking = event.marking;
  if (marking !== undefined) {
    const label = options.markingLabel?.(marking) ?? marking;
    body = `[${label}] ${body}`;
    if (html.trim() !== "") html = `<strong>[${escapeHtml(label)}]</strong> ${html}`;
  }
  return {
    msgtype,
    body,
    ...(html.trim() === "" ? {} : { format: htmlFormat, formatted_body: html }),
    ...(marking === undefined ? {} : { [markingContentKey]: marking }),
  };
}

function fileMsgtype(mediaType: string): string {
  if (mediaType.startsWith("image/")) return MsgType.image;
  if (mediaType.startsWith("video/")) return MsgType.video;
  if (mediaType.startsWith("audio/")) return MsgType.audio;
  return MsgType.file;
}

function fileContent(
  attachment: Attachment,
  uploaded: UploadedFile,
  event: NormalisedEvent,
  options: OutboundOptions,
): Record<string, unknown> {
  const marking = event.marking;
  const label = marking === undefined ? undefined : (options.markingLabel?.(marking) ?? marking);
  return {
    msgtype: fileMsgtype(attachment.mediaType),
    // A marked file shows its marking as a caption (Matrix v1.10: a body other than the filename).
    body: label === undefined ? attachment.name : `[${label}] ${attachment.name}`,
    ...(label === undefined ? {} : { filename: attachment.name }),
    ...(typeof uploaded === "string" ? { url: uploaded } : { file: uploaded }),
    info: { size: attachment.size, mimetype: attachment.mediaType },
    ...(marking === undefined ? {} : { [markingContentKey]: marking }),
  };
}

function messages(
  event: NormalisedEvent,
  relations: NativeRelations,
  options: OutboundOptions,
): MatrixContent[] {
  const files: Record<string, unknown>[] = [];
  const notes: string[] = [];
  for (const attachment of event.content?.attachments ?? []) {
    const uploaded = options.uploaded.get(attachment.url);
    if (uploaded === undefined) notes.push(`[file not carried: ${attachment.name}]`);
    else files.push(fileContent(attachment, uploaded, event, options));
  }
  const text = textContent(event, options, notes);
  const contents = text === undefined ? files : [text, ...files];
  // The reply hangs on the first event; Matrix v1.13 dropped the quote it used to carry.
  const [first] = contents;
  if (first !== undefined && relations.replyTo !== undefined) {
    first["m.relates_to"] = { "m.in_reply_to": { event_id: relations.replyTo } };
  }
  return contents.map((content) => ({ type: EventType.message, content }));
}

function edit(event: NormalisedEvent, relations: NativeRelations, options: OutboundOptions): MatrixContent[] {
  if (relations.replaces === undefined) return [];
  const newContent = textContent(event, options) ?? { msgtype: MsgType.text, body: "" };
  const html = newContent.formatted_body;
  return [
    {
      type: EventType.message,
      content: {
        ...newContent,
        // The fallback for clients without edits, marked as a correction the way they write one.
        body: `* ${newContent.body}`,
        ...(html === undefined ? {} : { formatted_body: `* ${html}` }),
        "m.new_content": newContent,
        "m.relates_to": { rel_type: RelType.replace, event_id: relations.replaces },
      },
    },
  ];
}

function reaction(event: NormalisedEvent, relations: NativeRelations): MatrixContent[] {
  const key = event.content?.reaction;
  if (relations.reactsTo === undefined || key === undefined) return [];
  return [
    {
      type: EventType.reaction,
      content: { "m.relates_to": { rel_type: RelType.annotation, event_id: relations.reactsTo, key } },
    },
  ];
}

/**
 * The Matrix events to send for a delivery, in order; none when the event it relates to never reached this
 * room. Deletions, reaction removals and membership are the bridge's to do (redactions, ghosts joining).
 */
export function toMatrixContent(
  event: NormalisedEvent,
  relations: NativeRelations,
  options: OutboundOptions,
): MatrixContent[] {
  switch (event.type) {
    case "message.created":
    case "notice":
      return messages(event, relations, options);
    case "message.edited":
      return edit(event, relations, options);
    case "reaction.added":
      return reaction(event, relations);
    case "reaction.removed":
    case "message.deleted":
    case "member.joined":
    case "member.left":
      return [];
  }
}
