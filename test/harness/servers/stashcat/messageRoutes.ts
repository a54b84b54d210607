/**
 * Reading and writing messages. Text is stored as sent (hex ciphertext when encrypted) and never opened.
 * Every new or changed message goes to each member's sockets as `message_sync`; a new one also goes to the
 * members besides its sender as `notification`, with the chat and its key for them.
 */
import { Refusal, asId, type Form } from "./envelope.js";
import { authed, type ApiContext, type Endpoint } from "./api.js";
import { nowSeconds, type Chat, type ChatType, type Location, type Message } from "./store.js";
import { channelView, conversationView, messageView } from "./views.js";

function chatType(form: Form, field: "source" | "target"): ChatType {
  const value = form.requiredString(field);
  if (value !== "channel" && value !== "conversation")
    throw new Refusal("invalid_values", `${field} must be channel or conversation`);
  return value;
}

/** Sends the message to every member's sockets, each seeing it as theirs to see. */
export function publish(ctx: ApiContext, chat: Chat, message: Message, isNew: boolean): void {
  for (const memberId of chat.memberIds) {
    const view = messageView(ctx, message, memberId);
    ctx.push.emit(memberId, "message_sync", view);
    if (isNew && memberId !== message.senderId)
      ctx.push.emit(
        memberId,
        "notification",
        chat.type === "channel"
          ? { message: view, channel: channelView(ctx, chat, memberId, { numericId: false, members: false }) }
          : { message: view, conversation: conversationView(ctx, chat, memberId) },
      );
  }
}

/** The message to act on, as a member of its chat may see it; chat entries that are not messages refused. */
function chatMessage(ctx: ApiContext, form: Form, userId: number): { message: Message; chat: Chat } {
  const message = ctx.store.message(form.requiredInt("message_id"));
  const chat = ctx.store.memberChat(message.chatType, message.chatId, userId);
  if (message.kind !== "message")
    throw new Refusal("invalid_values", `entry ${String(message.id)} is not a message`);
  return { message, chat };
}

/** `reply_to` as a message id, or as `{message_id, …}` (clients differ). */
function replyTo(form: Form): number | undefined {
  const raw = form.string("reply_to")?.trim();
  if (raw === undefined || raw === "" || raw === "0" || raw === "null") return undefined;
  const direct = asId(raw);
  if (direct !== undefined) return direct;
  const value = form.json("reply_to");
  const nested =
    typeof value === "object" && value !== null
      ? asId((value as Record<string, unknown>)["message_id"])
      : undefined;
  if (nested === undefined) throw new Refusal("invalid_values", "reply_to must be a message id");
  return nested;
}

/** `url` as a JSON array (most clients, "[]" for none) or as one plain URL (stashcat-api). */
function urls(form: Form): unknown[] {
  const raw = form.string("url")?.trim() ?? "";
  if (raw === "") return [];
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return [raw];
  }
  if (Array.isArray(value)) return value;
  if (typeof value === "string") return [value];
  throw new Refusal("invalid_values", "url must be a JSON array or a URL");
}

function location(form: Form): Location | undefined {
  const latitude = form.string("latitude") ?? "";
  const longitude = form.string("longitude") ?? "";
  if (latitude === "" && longitude === "") return undefined;
  form.require("latitude", "longitude");
  return { latitude, longitude };
}

export const messageRoutes: Record<string, Endpoint> = {
  /**
   * A page of a chat's entries, oldest first. Without after_message_id, offset counts back from the
   * newest: offset 0 is the latest `limit` entries. With it, the entries after that id, oldest first.
   */
  "message/content": authed(({ form, user }, ctx) => {
    const source = chatType(form, "source");
    const chat = ctx.store.memberChat(source, form.requiredInt(`${source}_id`), user.id);
    const limit = form.int("limit") ?? 30;
    const offset = form.int("offset") ?? 0;
    if (limit < 0 || offset < 0) throw new Refusal("invalid_values", "limit and offset must not be negative");
    const entries = ctx.store.messagesOf(chat);
    const after = form.int("after_message_id");
    const page =
      after !== undefined
        ? entries.filter((m) => m.id > after).slice(0, limit)
        : entries.slice(Math.max(0, entries.length - offset - limit), Math.max(0, entries.length - offset));
    return { messages: page.map((m) => messageView(ctx, m, user.id)) };
  }),

  "message/send": authed(({ form, user, session }, ctx) => {
    const target = chatType(form, "target");
    const chat = ctx.store.memberChat(target, form.requiredInt(`${target}_id`), user.id);
    const text = form.string("text") ?? "";
    const encrypted = form.bool("encrypted");
    const fileIds = form.intList("files");
    for (const id of fileIds) ctx.store.readableFile(id, user.id);
    const links = urls(form);
    const metainfo = form.json("metainfo") ?? null;
    const place = location(form);
    if (text === "" && fileIds.length === 0 && place === undefined)
      throw new Refusal("missing_values", "missing values, text or files required");
    // A message of files alone has nothing of its own to encrypt.
    if (encrypted && (text !== "" || place !== undefined)) form.require("iv");
    const reply = replyTo(form);
    if (reply !== undefined) {
      const original = ctx.store.message(reply);
      if (original.chatType !== chat.type || original.chatId !== chat.id)
        throw new Refusal("invalid_values", `message ${String(reply)} is not in this chat`);
    }
    const message = ctx.store.addEntry(chat, user.id, session.deviceId, {
      text,
      encrypted,
      iv: encrypted ? (form.string("iv") ?? null) : null,
      verification: form.string("verification") ?? "",
      type: form.string("type") ?? "text",
      fileIds,
      urls: links,
      metainfo,
      isForwarded: form.bool("is_forwarded"),
      replyTo: reply ?? null,
      location: place,
      alarm: form.bool("alarm"),
    });
    publish(ctx, chat, message, true);
    // Sic: here `time` is a number, in lists and pushes a string.
    return { message: messageView(ctx, message, user.id, "number") };
  }),

  /** Only its sender or a manager of its channel may delete a message; it stays, marked deleted. */
  "message/delete": authed(({ form, user }, ctx) => {
    const { message, chat } = chatMessage(ctx, form, user.id);
    const manager = chat.type === "channel" && chat.managerIds.has(user.id);
    if (message.senderId !== user.id && !manager)
      throw new Refusal("no_permission", "only its sender or a channel manager may delete a message");
    if (message.deletedAt === null) {
      message.deletedAt = nowSeconds();
      message.deletedByManager = message.senderId !== user.id;
      publish(ctx, chat, message, false);
    }
    return { success: true };
  }),

  "message/like": authed(({ form, user }, ctx) => {
    const { message, chat } = chatMessage(ctx, form, user.id);
    if (!message.likes.has(user.id)) {
      message.likes.add(user.id);
      publish(ctx, chat, message, false);
    }
    return { message_id: message.id, likes: message.likes.size, liked: true };
  }),

  "message/unlike": authed(({ form, user }, ctx) => {
    const { message, chat } = chatMessage(ctx, form, user.id);
    if (message.likes.delete(user.id)) publish(ctx, chat, message, false);
    return { message_id: message.id, likes: message.likes.size, liked: false };
  }),
};
