/** Channels and conversations: listing them, one in detail, and opening an encrypted conversation. */
import { Refusal, asId } from "./envelope.js";
import { authed, type Endpoint } from "./api.js";
import type { Channel, Conversation } from "./store.js";
import { channelView, conversationView } from "./views.js";

/** `members` of createEncryptedConversation: `[{"id": 1, "key": "<base64>"}, …]`, the caller included. */
function memberKeys(value: unknown, selfId: number): Map<number, string> {
  const shape = 'members must be a JSON array of {"id", "key"}, yourself included';
  if (!Array.isArray(value) || value.length === 0) throw new Refusal("invalid_values", shape);
  const keys = new Map<number, string>();
  for (const item of value as unknown[]) {
    if (typeof item !== "object" || item === null) throw new Refusal("invalid_values", shape);
    const { id, key } = item as Record<string, unknown>;
    const userId = asId(id);
    if (userId === undefined || typeof key !== "string" || key === "")
      throw new Refusal("invalid_values", shape);
    keys.set(userId, key);
  }
  if (!keys.has(selfId)) throw new Refusal("invalid_values", shape);
  if (keys.size < 2) throw new Refusal("invalid_values", "a conversation needs someone besides yourself");
  return keys;
}

export const chatRoutes: Record<string, Endpoint> = {
  "channels/subscripted": authed(({ form, user }, ctx) => {
    const companyId = form.requiredInt("company");
    if (!user.companyIds.includes(companyId))
      throw new Refusal("no_permission", `you are not a member of company ${String(companyId)}`);
    return {
      channels: ctx.store
        .channelsOf(user.id, companyId)
        .map((channel) => channelView(ctx, channel, user.id, { numericId: false, members: false })),
    };
  }),

  // Sic: one channel, under the plural key, with a numeric id where lists have a string.
  "channels/info": authed(({ form, user }, ctx) => {
    const channel = ctx.store.chat("channel", form.requiredInt("channel_id")) as Channel;
    if (!user.companyIds.includes(channel.companyId))
      throw new Refusal("no_permission", `channel ${String(channel.id)} is not in your company`);
    return {
      channels: channelView(ctx, channel, user.id, {
        numericId: true,
        members: !form.bool("without_members"),
      }),
    };
  }),

  "message/conversations": authed(({ form, user }, ctx) => {
    const limit = form.int("limit") ?? 50;
    const offset = form.int("offset") ?? 0;
    if (limit < 0 || offset < 0) throw new Refusal("invalid_values", "limit and offset must not be negative");
    return {
      conversations: ctx.store
        .conversationsOf(user.id)
        .slice(offset, offset + limit)
        .map((conversation) => conversationView(ctx, conversation, user.id)),
    };
  }),

  "message/conversation": authed(({ form, user }, ctx) => {
    const conversation = ctx.store.memberChat(
      "conversation",
      form.requiredInt("conversation_id"),
      user.id,
    ) as Conversation;
    return { conversation: conversationView(ctx, conversation, user.id) };
  }),

  /**
   * The conversation of exactly these members: an existing one is returned as it is, with the keys it
   * already has (the caller must use the returned key, not the one it offered).
   */
  "message/createEncryptedConversation": authed(({ form, user }, ctx) => {
    form.require("members");
    const keys = memberKeys(form.json("members"), user.id);
    for (const id of keys.keys()) ctx.store.user(id);
    const conversation =
      ctx.store.findConversation(new Set(keys.keys())) ?? ctx.store.createConversation(keys);
    return { conversation: conversationView(ctx, conversation, user.id) };
  }),
};
