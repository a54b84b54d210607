/**
 * Channels and conversations: listing them, one in detail, opening an encrypted conversation, and handing
 * members without a chat key theirs.
 */
import { Refusal, asId, type Form } from "./envelope.js";
import { authed, type Endpoint } from "./api.js";
import type { Channel, Chat, Conversation } from "./store.js";
import { channelView, conversationView } from "./views.js";

const MEMBERS_SHAPE =
  'members must be a JSON array of {"id", "key"} (yourself included) or of user ids with a unique_identifier';
/** Hex naming a key: what stashcat-api sends as unique_identifier. */
const IDENTIFIER = /^(?:[0-9a-f]{2}){1,64}$/i;

/**
 * `members` of createEncryptedConversation in either form the clients use: `[{"id": 1, "key": "<base64>"},
 * …]` with the caller included (gostashcat, hermine-api), or `[1, 2]` with a `unique_identifier` naming the
 * key the members get afterwards through set_missing_key (stashcat-api); there the caller is a member
 * whether listed or not. The member ids, and the keys given.
 */
function members(form: Form, selfId: number): { memberIds: Set<number>; keys: Map<number, string> } {
  const value = form.json("members");
  if (!Array.isArray(value) || value.length === 0) throw new Refusal("invalid_values", MEMBERS_SHAPE);
  const items = value as unknown[];
  const memberIds = new Set<number>();
  const keys = new Map<number, string>();
  if (items.every((item) => asId(item) !== undefined)) {
    form.require("unique_identifier");
    if (!IDENTIFIER.test(form.requiredString("unique_identifier")))
      throw new Refusal("invalid_values", "unique_identifier must be hex of at most 64 bytes");
    for (const item of items) memberIds.add(asId(item) ?? 0);
    memberIds.add(selfId);
  } else {
    for (const item of items) {
      if (typeof item !== "object" || item === null) throw new Refusal("invalid_values", MEMBERS_SHAPE);
      const { id, key } = item as Record<string, unknown>;
      const userId = asId(id);
      if (userId === undefined || typeof key !== "string" || key === "")
        throw new Refusal("invalid_values", MEMBERS_SHAPE);
      memberIds.add(userId);
      keys.set(userId, key);
    }
    if (!keys.has(selfId)) throw new Refusal("invalid_values", MEMBERS_SHAPE);
  }
  if (memberIds.size < 2)
    throw new Refusal("invalid_values", "a conversation needs someone besides yourself");
  return { memberIds, keys };
}

/** `keys` of set_missing_key: `[{"user_id", "key", "key_signature"}, …]`, one per member without a key. */
function missingKeys(value: unknown, chat: Chat): Map<number, string> {
  const shape = 'keys must be a JSON array of {"user_id", "key"} for members of the chat';
  if (!Array.isArray(value) || value.length === 0) throw new Refusal("invalid_values", shape);
  const keys = new Map<number, string>();
  for (const item of value as unknown[]) {
    if (typeof item !== "object" || item === null) throw new Refusal("invalid_values", shape);
    const { user_id: id, key } = item as Record<string, unknown>;
    const userId = asId(id);
    if (userId === undefined || !chat.memberIds.has(userId) || typeof key !== "string" || key === "")
      throw new Refusal("invalid_values", shape);
    keys.set(userId, key);
  }
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
    const { memberIds, keys } = members(form, user.id);
    for (const id of memberIds) ctx.store.user(id);
    const conversation =
      ctx.store.findConversation(memberIds) ??
      ctx.store.createConversation(memberIds, keys, form.string("unique_identifier") ?? null);
    return { conversation: conversationView(ctx, conversation, user.id) };
  }),

  /**
   * Chat keys for members who have none yet, each wrapped for that member by a member who has the key. A
   * member's key once given stays. The signature (`key_signature`) is taken as given: this server keeps no
   * signing keys to check it with.
   */
  "security/set_missing_key": authed(({ form, user }, ctx) => {
    form.require("type", "id", "keys");
    const type = form.requiredString("type");
    if (type !== "channel" && type !== "conversation")
      throw new Refusal("invalid_values", "type must be channel or conversation");
    const chat = ctx.store.memberChat(type, form.requiredInt("id"), user.id);
    for (const [memberId, key] of missingKeys(form.json("keys"), chat))
      if (!chat.keys.has(memberId)) chat.keys.set(memberId, key);
    return { success: true };
  }),
};
