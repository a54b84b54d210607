/**
 * Stashcat's wire message object (from message/content, message/send and the push channel's message_sync),
 * normalised into one shape. Stashcat's field names and type quirks stay here: ids and times as strings or
 * numbers, `reply_to` as an id or an object, booleans as strings, `metainfo` as an object or JSON text,
 * `deleted` as null or the quoted time of the deletion, or as a boolean.
 */
import { PermanentError } from "../../schemas/contract/errors.js";

export type ChatRef = { type: "channel" | "conversation"; id: number };

export interface StashcatMessage {
  id: number;
  chat: ChatRef;
  /** "message" for chat messages; the lists also hold other kinds, which the bridge skips. */
  kind: string;
  senderId: number;
  senderName: string;
  /** Plaintext, or lowercase hex ciphertext when `encrypted`. */
  text: string;
  /** Hex IV of the ciphertext. */
  iv?: string;
  encrypted: boolean;
  /** Seconds since the epoch. */
  time: number;
  replyTo?: number;
  fileIds: number[];
  likes: number;
  /** Whether the account reading it liked it, when the server says (`liked` is the reader's own). */
  liked?: boolean;
  deleted: boolean;
  markdown: boolean;
  /** What the sender's client put in `verification`, when anything (the bridge: its delivery's marker). */
  verification?: string;
}

type Json = Record<string, unknown>;

/** 9999-12-31T23:59:59Z in seconds: the latest time an event's timestamp (RFC 3339) can say. */
const LATEST_TIME = 253_402_300_799;

export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An id or count: a non-negative safe integer, as a number or a string of digits; undefined otherwise. */
export function toInt(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value === "string" && /^\d{1,16}$/.test(value.trim())) {
    const number = Number(value.trim());
    return Number.isSafeInteger(number) ? number : undefined;
  }
  return undefined;
}

/** A boolean as Stashcat's servers and clients spell it: true, "true", "True", 1 or "1". */
export function toBool(value: unknown): boolean | undefined {
  if (typeof value === "boolean") return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === "string") {
    const word = value.trim().toLowerCase();
    if (word === "true" || word === "1") return true;
    if (word === "false" || word === "0" || word === "") return false;
  }
  return undefined;
}

/** A string that says something: "" and null mean absent. */
export function toText(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function invalid(field: string, reason: string, id?: number): never {
  throw new PermanentError("FG_NATIVE_INVALID", `Stashcat message: ${field} ${reason}`, {
    detail: { field, reason, ...(id === undefined ? {} : { messageId: id }) },
  });
}

/** Absent, null, 0 and "0" all mean "not this kind of chat" (a channel message has conversation_id 0). */
function chatId(raw: Json, field: string, id: number): number | undefined {
  const value = raw[field];
  if (value === undefined || value === null) return undefined;
  const number = toInt(value);
  if (number === undefined) invalid(field, "is not an id", id);
  return number === 0 ? undefined : number;
}

function replyTarget(value: unknown, id: number): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  // Some servers send the id, others an object with the id, hash and verification of the original.
  const target = isObject(value) ? value["message_id"] : value;
  if (target === undefined || target === null) return undefined;
  const number = toInt(target);
  if (number === undefined) invalid("reply_to", "is neither a message id nor an object with one", id);
  return number === 0 ? undefined : number;
}

function fileIds(value: unknown, id: number): number[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) invalid("files", "is not a list", id);
  return value.map((file: unknown) => {
    const fileId = toInt(isObject(file) ? file["id"] : file);
    if (fileId === undefined) invalid("files", "holds an entry without a file id", id);
    return fileId;
  });
}

/**
 * `deleted` as the servers and clients have it: null while the message lives and the unix time of its
 * deletion, quoted, once deleted (gostashcat decodes it so); or a boolean (stashcat-api declares one).
 */
function isDeleted(value: unknown, id: number): boolean {
  if (value === undefined || value === null) return false;
  const flag = toBool(value);
  if (flag !== undefined) return flag;
  const time = toInt(value);
  if (time === undefined) invalid("deleted", "is neither the time of a deletion nor a boolean", id);
  if (time > LATEST_TIME) invalid("deleted", "is after the year 9999", id);
  return time > 0;
}

function isMarkdown(value: unknown): boolean {
  let info = value;
  if (typeof value === "string") {
    try {
      info = JSON.parse(value);
    } catch {
      return false;
    }
  }
  return isObject(info) && info["style"] === "md";
}

/**
 * Normalises one wire message object, wherever it came from; `chat` stands in when the object names neither
 * channel nor conversation (message/content's entries are known to belong to the chat asked for). Throws
 * FG_NATIVE_INVALID naming the field that is missing or of the wrong type; the detail never holds the text.
 */
export function parseMessage(raw: unknown, chat?: ChatRef): StashcatMessage {
  if (!isObject(raw)) invalid("the message", "is not an object");
  const id = toInt(raw["id"]);
  if (id === undefined || id === 0) invalid("id", raw["id"] === undefined ? "is missing" : "is not an id");

  const kindValue = raw["kind"] ?? "message";
  if (typeof kindValue !== "string") invalid("kind", "is not a string", id);
  const kind = kindValue;

  const channelId = chatId(raw, "channel_id", id);
  const conversationId = chatId(raw, "conversation_id", id);
  let where: ChatRef;
  if (channelId !== undefined && conversationId !== undefined)
    invalid("channel_id", "and conversation_id are both set", id);
  else if (channelId !== undefined) where = { type: "channel", id: channelId };
  else if (conversationId !== undefined) where = { type: "conversation", id: conversationId };
  else if (chat !== undefined) where = chat;
  else invalid("channel_id", "and conversation_id are both missing", id);

  const sender = raw["sender"];
  let senderId = 0;
  let senderName = "";
  if (isObject(sender)) {
    const senderValue = toInt(sender["id"]);
    if (senderValue === undefined) invalid("sender.id", "is not an id", id);
    senderId = senderValue;
    const first = typeof sender["first_name"] === "string" ? sender["first_name"] : "";
    const last = typeof sender["last_name"] === "string" ? sender["last_name"] : "";
    senderName = `${first} ${last}`.trim();
  } else if (sender !== undefined && sender !== null) invalid("sender", "is not an object", id);
  // Entries of other kinds (system notices) may come without a sender; a chat message may not.
  else if (kind === "message") invalid("sender", "is missing", id);

  const textValue = raw["text"] ?? "";
  if (typeof textValue !== "string") invalid("text", "is not a string", id);

  const ivValue = raw["iv"];
  if (ivValue !== undefined && ivValue !== null && typeof ivValue !== "string")
    invalid("iv", "is not a string", id);

  const encrypted = toBool(raw["encrypted"] ?? false);
  if (encrypted === undefined) invalid("encrypted", "is not a boolean", id);

  const time = toInt(raw["time"]);
  if (time === undefined) invalid("time", raw["time"] === undefined ? "is missing" : "is not a time", id);
  if (time > LATEST_TIME) invalid("time", "is after the year 9999", id);

  const likes = toInt(raw["likes"] ?? 0);
  if (likes === undefined) invalid("likes", "is not a count", id);
  const likedValue = raw["liked"];
  const liked = likedValue === undefined || likedValue === null ? undefined : toBool(likedValue);
  if (liked === undefined && likedValue !== undefined && likedValue !== null)
    invalid("liked", "is not a boolean", id);

  const deleted = isDeleted(raw["deleted"], id);
  const deletedByManager = toBool(raw["is_deleted_by_manager"] ?? false);
  if (deletedByManager === undefined) invalid("is_deleted_by_manager", "is not a boolean", id);

  const message: StashcatMessage = {
    id,
    chat: where,
    kind,
    senderId,
    senderName,
    text: textValue,
    encrypted,
    time,
    fileIds: fileIds(raw["files"], id),
    likes,
    deleted: deleted || deletedByManager,
    markdown: isMarkdown(raw["metainfo"]),
  };
  if (liked !== undefined) message.liked = liked;
  const verification = toText(raw["verification"]);
  if (verification !== undefined) message.verification = verification;
  const iv = toText(ivValue);
  if (iv !== undefined) message.iv = iv;
  const replyTo = replyTarget(raw["reply_to"], id);
  if (replyTo !== undefined) message.replyTo = replyTo;
  return message;
}
