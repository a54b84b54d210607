/**
 * A Matrix room event as the homeserver sends it in an application service transaction, checked before the
 * bridge reads it, and the Matrix names the bridge uses.
 */
import { PermanentError } from "../../schemas/contract/errors.js";
import { isRecord } from "../kit/isRecord.js";
import { isEventId, isRoomId, isUserId, loggableId, maxIdBytes } from "./matrixIds.js";

export interface MatrixEvent {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  origin_server_ts: number;
  content: Record<string, unknown>;
  /** Set on state events only ("" for room-wide state). */
  state_key?: string;
  /** The redacted event of an m.room.redaction before room version 11 (later rooms put it in content). */
  redacts?: string;
  unsigned?: Record<string, unknown>;
}

/** The event types the bridge handles. */
export const EventType = {
  message: "m.room.message",
  reaction: "m.reaction",
  redaction: "m.room.redaction",
  member: "m.room.member",
  encrypted: "m.room.encrypted",
  sticker: "m.sticker",
  // Room state the bridge reads.
  create: "m.room.create",
  encryption: "m.room.encryption",
  powerLevels: "m.room.power_levels",
  topic: "m.room.topic",
  /** fedgate's room state: the marking of everything said in the room. */
  marking: "eu.fedgate.marking",
} as const;

export const MsgType = {
  text: "m.text",
  notice: "m.notice",
  emote: "m.emote",
  image: "m.image",
  file: "m.file",
  audio: "m.audio",
  video: "m.video",
} as const;

export const RelType = {
  replace: "m.replace",
  annotation: "m.annotation",
  thread: "m.thread",
} as const;

/** The only `format` of formatted_body the spec defines. */
export const htmlFormat = "org.matrix.custom.html";

/** The room's marking: state event EventType.marking with this state_key, content { marking: "DE-VS-NFD" }. */
export const markingStateKey = "";
export const markingStateContentKey = "marking";
/** One message's own marking, a key of its content: { ..., "eu.fedgate.marking": "DE-VS-NFD" }. */
export const markingContentKey = "eu.fedgate.marking";

/** common.schema.json#/$defs/MarkingId. */
const markingPattern = /^[A-Z0-9][A-Z0-9-]{0,63}$/;

export function isMarkingId(value: unknown): value is string {
  return typeof value === "string" && markingPattern.test(value);
}

/** The marking a room's marking state content names, or undefined when it names none that is valid. */
export function markingOfState(content: Record<string, unknown>): string | undefined {
  const marking = content[markingStateContentKey];
  return isMarkingId(marking) ? marking : undefined;
}

/**
 * The latest instant an RFC 3339 date-time can name (the end of year 9999), in milliseconds: past it, a Date
 * prints a six-digit year the event schema's "date-time" refuses.
 */
const maxTimestamp = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function invalid(
  message: string,
  reason: string,
  event?: { eventId?: unknown; type?: unknown },
  field?: string,
): PermanentError {
  const eventId = typeof event?.eventId === "string" ? loggableId(event.eventId) : undefined;
  const type = typeof event?.type === "string" ? event.type : undefined;
  return new PermanentError("FG_NATIVE_INVALID", message, {
    detail: {
      reason,
      ...(field === undefined ? {} : { field }),
      ...(eventId === undefined ? {} : { eventId }),
      ...(type === undefined ? {} : { type }),
    },
  });
}

type IdKind = "event" | "room" | "user";

const idChecks: Record<IdKind, (text: string) => boolean> = {
  event: isEventId,
  room: isRoomId,
  user: isUserId,
};

/**
 * Every event id the content names that the bridge may read, by where it is: what a redaction takes back
 * (room version 11 moved it into the content), and what a relation points at (an edit's or reaction's
 * target, the message a reply answers).
 */
function relationIds(type: string, content: Record<string, unknown>): [string, unknown][] {
  const found: [string, unknown][] = [];
  if (type === EventType.redaction && content["redacts"] !== undefined)
    found.push(["content.redacts", content["redacts"]]);
  const relates = content["m.relates_to"];
  if (!isRecord(relates)) return found;
  if (relates["event_id"] !== undefined) found.push(["m.relates_to.event_id", relates["event_id"]]);
  const inReplyTo = relates["m.in_reply_to"];
  if (isRecord(inReplyTo) && inReplyTo["event_id"] !== undefined)
    found.push(["m.in_reply_to.event_id", inReplyTo["event_id"]]);
  return found;
}

/**
 * The event, checked for the fields the bridge reads; other fields are dropped. Throws FG_NATIVE_INVALID for
 * anything that is not an event.
 */
export function parseMatrixEvent(raw: unknown): MatrixEvent {
  if (!isRecord(raw)) throw invalid("Matrix event is not a JSON object", "not-an-object");
  const ids = { eventId: raw["event_id"], type: raw["type"] };
  const name =
    typeof ids.eventId === "string" && ids.eventId !== "" ? loggableId(ids.eventId) : "without an id";

  const text = (field: string): string => {
    const value = raw[field];
    if (value === undefined)
      throw invalid(`Matrix event ${name} has no ${field}`, "missing-field", ids, field);
    if (typeof value !== "string" || value === "")
      throw invalid(
        `Matrix event ${name} has a ${field} that is not a non-empty string`,
        "wrong-type",
        ids,
        field,
      );
    return value;
  };
  const optionalText = (field: string): string | undefined => {
    const value = raw[field];
    if (value === undefined) return undefined;
    if (typeof value !== "string")
      throw invalid(`Matrix event ${name} has a ${field} that is not a string`, "wrong-type", ids, field);
    return value;
  };
  const object = (field: string, required: boolean): Record<string, unknown> | undefined => {
    const value = raw[field];
    if (value === undefined && !required) return undefined;
    if (value === undefined)
      throw invalid(`Matrix event ${name} has no ${field}`, "missing-field", ids, field);
    if (!isRecord(value))
      throw invalid(`Matrix event ${name} has a ${field} that is not an object`, "wrong-type", ids, field);
    return value;
  };

  /** An id the bridge reads: of its kind, and within the spec's 255 bytes, or the event is refused. */
  const id = (field: string, value: string, kind: IdKind): string => {
    if (!idChecks[kind](value))
      throw invalid(
        `Matrix event ${name} has a ${field} that is not a Matrix ${kind} id (a sigil, at most ${String(maxIdBytes)} bytes)`,
        "id-invalid",
        ids,
        field,
      );
    return value;
  };

  const event_id = id("event_id", text("event_id"), "event");
  const room_id = id("room_id", text("room_id"), "room");
  const sender = id("sender", text("sender"), "user");
  const type = text("type");
  const ts = raw["origin_server_ts"];
  if (ts === undefined)
    throw invalid(`Matrix event ${name} has no origin_server_ts`, "missing-field", ids, "origin_server_ts");
  if (typeof ts !== "number" || !Number.isInteger(ts) || ts < 0 || ts > maxTimestamp)
    throw invalid(
      `Matrix event ${name} has an origin_server_ts that is not a time in milliseconds`,
      "wrong-type",
      ids,
      "origin_server_ts",
    );
  const content = object("content", true) ?? {};
  const state_key = optionalText("state_key");
  // A membership's state key is the user it is about.
  if (type === EventType.member && state_key !== undefined) id("state_key", state_key, "user");
  const redacts = optionalText("redacts");
  if (redacts !== undefined) id("redacts", redacts, "event");
  for (const [field, value] of relationIds(type, content)) {
    if (typeof value !== "string")
      throw invalid(`Matrix event ${name} has a ${field} that is not a string`, "wrong-type", ids, field);
    id(field, value, "event");
  }
  const unsigned = object("unsigned", false);
  return {
    event_id,
    room_id,
    sender,
    type,
    origin_server_ts: ts,
    content,
    ...(state_key === undefined ? {} : { state_key }),
    ...(redacts === undefined ? {} : { redacts }),
    ...(unsigned === undefined ? {} : { unsigned }),
  };
}
