/**
 * The JSON shapes the server answers with, field names and types as the real server's (from clients'
 * models generated from its answers): most ids and counts are strings, but message ids and a single
 * channel's id are numbers, and `time` is a string except in `message/send`'s answer. Every shape is drawn
 * for one viewer: chat keys are wrapped for them, `liked` is theirs.
 */
import { createHash } from "node:crypto";
import type { Channel, Chat, Conversation, Message, Store, StoredFile, User } from "./store.js";

export interface ViewContext {
  store: Store;
  /** Channel keys as 64 hex characters of the raw key, as some deployments send them. */
  rawChannelKeys: boolean;
  /**
   * How a message says it is deleted: "time", null while it lives and the quoted unix time of its deletion
   * after (as gostashcat decodes the real server's answers), or "boolean" (as stashcat-api declares it).
   */
  deletedAs: "time" | "boolean";
  online(userId: number): boolean;
}

/** A person as chats and messages show them. */
export function userView(ctx: ViewContext, user: User, withKey = true): Record<string, unknown> {
  return {
    id: String(user.id),
    first_name: user.firstName,
    last_name: user.lastName,
    image: null,
    active: "1",
    deleted: null,
    allows_voip_calls: false,
    online: ctx.online(user.id),
    ...(withKey ? { public_key: user.publicKey } : {}),
    language: "de",
  };
}

/** The account as `auth/login` and `users/me` describe it. */
export function userInfo(ctx: ViewContext, user: User, withKey = true): Record<string, unknown> {
  return {
    ...userView(ctx, user, withKey),
    socket_id: user.socketId,
    status: null,
    user_status: [],
    email: user.email,
    email_validated: "1",
    notifications: true,
    last_login: String(user.created),
    quota: "1073741824",
    ldap_login: null,
    roles: user.companyIds.map((companyId) => ({
      id: "3",
      name: "Benutzer",
      global: "0",
      company_id: String(companyId),
      time: String(user.created),
      editable: false,
    })),
    permissions: [],
    company_features: [],
    settings: { encryption: true, can_delete_messages: true, language: "de" },
  };
}

/** The chat key for this viewer: wrapped for them, or the raw hex with the deployment quirk. */
export function chatKeyFor(ctx: ViewContext, chat: Chat, viewerId: number): string | null {
  if (
    chat.type === "channel" &&
    ctx.rawChannelKeys &&
    chat.rawKey !== undefined &&
    chat.memberIds.has(viewerId)
  )
    return chat.rawKey.toString("hex");
  return chat.keys.get(viewerId) ?? null;
}

export function channelView(
  ctx: ViewContext,
  channel: Channel,
  viewerId: number,
  options: { numericId: boolean; members: boolean },
): Record<string, unknown> {
  const isMember = channel.memberIds.has(viewerId);
  const mayManage = channel.managerIds.has(viewerId);
  return {
    id: options.numericId ? channel.id : String(channel.id),
    name: channel.name,
    description: channel.description,
    image: null,
    company: String(channel.companyId),
    type: "closed",
    visible: true,
    password: false,
    encrypted: true,
    encryption: "aes",
    key: isMember ? chatKeyFor(ctx, channel, viewerId) : null,
    key_requested: false,
    last_action: String(channel.lastAction),
    last_activity: String(channel.lastAction),
    favorite: false,
    manager: mayManage,
    writable: "all",
    inviteable: "manager",
    can_leave: true,
    membership: {
      is_member: isMember,
      joined: isMember ? String(channel.created) : null,
      // A string (gostashcat): when the membership was confirmed; every seeded one is from the start.
      confirmation: isMember ? String(channel.created) : null,
      may_manage: mayManage,
      write: isMember,
      muted: false,
    },
    // Numbers, where most counts are strings (gostashcat decodes them as int).
    user_count: channel.memberIds.size,
    unread: 0,
    group_id: null,
    ldap_name: null,
    show_membership_activities: false,
    pending_count: 0,
    num_members_without_keys: 0,
    ...(options.members
      ? {
          members: [...channel.memberIds].flatMap((id) => {
            const user = ctx.store.findUser(id);
            return user === undefined ? [] : [userView(ctx, user)];
          }),
        }
      : {}),
  };
}

export function conversationView(
  ctx: ViewContext,
  conversation: Conversation,
  viewerId: number,
): Record<string, unknown> {
  const members = [...conversation.memberIds].flatMap((id) => {
    const user = ctx.store.findUser(id);
    return user === undefined ? [] : [userView(ctx, user)];
  });
  return {
    id: String(conversation.id),
    name: null,
    created: String(conversation.created),
    last_action: String(conversation.lastAction),
    last_activity: String(conversation.lastAction),
    encrypted: true,
    members,
    user_count: members.length,
    unread_messages: 0,
    key: chatKeyFor(ctx, conversation, viewerId),
    key_requested: false,
    unique_identifier: conversation.uniqueIdentifier,
    archive: false,
    favorite: false,
    deleted: null,
    muted: null,
    members_without_keys: [],
    num_members_without_keys: 0,
    callable: [],
  };
}

function sizeString(bytes: number): string {
  if (bytes < 1024) return `${String(bytes)} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function fileView(ctx: ViewContext, file: StoredFile, viewerId: number): Record<string, unknown> {
  const bytes = file.bytes ?? Buffer.alloc(0);
  const dot = file.name.lastIndexOf(".");
  const keys = file.keys.flatMap((entry) => {
    let chatKey: string | null = null;
    try {
      chatKey = chatKeyFor(ctx, ctx.store.chat(entry.type, entry.chatId), viewerId);
    } catch {
      chatKey = null;
    }
    // A key is of use only to someone who can open the chat key it is locked with.
    return chatKey === null
      ? []
      : [
          {
            // A number here, though the file's own id is a string (gostashcat's Key).
            file_id: file.id,
            type: entry.type,
            chat_id: String(entry.chatId),
            key: entry.key,
            iv: entry.iv,
            chat_key: chatKey,
          },
        ];
  });
  return {
    id: String(file.id),
    name: file.name,
    virtual_folder: null,
    size: String(bytes.length),
    size_byte: String(bytes.length),
    size_string: sizeString(bytes.length),
    folder_type: file.folderType,
    type_id: String(file.typeId),
    dimensions: { width: file.width, height: file.height },
    ext: dot > 0 ? file.name.slice(dot + 1).toLowerCase() : "",
    mime: file.mime,
    base_64: null,
    uploaded: String(file.uploaded),
    modified: String(file.uploaded),
    permission: file.ownerId === viewerId ? "owner" : "read",
    owner_id: String(file.ownerId),
    owner: [],
    last_download: file.lastDownload === null ? null : String(file.lastDownload),
    status: file.bytes === undefined ? "uploading" : "ok",
    times_downloaded: String(file.timesDownloaded),
    deleted: null,
    encrypted: file.encrypted,
    e2e_iv: file.e2eIv,
    md5: createHash("md5").update(bytes).digest("hex"),
    keys,
  };
}

/**
 * A message or another chat entry. `time` is a string in lists and pushes; `message/send` answers with a
 * number.
 */
export function messageView(
  ctx: ViewContext,
  message: Message,
  viewerId: number,
  timeAs: "string" | "number" = "string",
): Record<string, unknown> {
  const { store } = ctx;
  const sender = store.findUser(message.senderId);
  const chat = store.chat(message.chatType, message.chatId);
  const deleted = message.deletedAt !== null;
  const files = deleted
    ? []
    : message.fileIds.flatMap((id) => {
        const file = store.pendingFile(id);
        return file?.bytes === undefined ? [] : [fileView(ctx, file, viewerId)];
      });
  const location =
    message.location === undefined || deleted
      ? null
      : {
          latitude: message.location.latitude,
          longitude: message.location.longitude,
          encrypted: message.encrypted,
          iv: message.encrypted ? message.iv : null,
        };
  const reciever =
    chat.type === "conversation"
      ? [...chat.memberIds]
          .filter((id) => id !== message.senderId)
          .flatMap((id) => {
            const user = store.findUser(id);
            return user === undefined ? [] : [userView(ctx, user, false)];
          })
      : [];
  return {
    id: message.id,
    text: deleted ? "" : message.text,
    conversation_id: message.chatType === "conversation" ? message.chatId : 0,
    channel_id: message.chatType === "channel" ? message.chatId : 0,
    thread_id: 0,
    hash: message.hash,
    verification: message.verification,
    broadcast: false,
    alarm: message.alarm,
    confirmation_required: false,
    confirmations: [],
    time: timeAs === "string" ? String(message.time) : message.time,
    micro_time: message.microTime,
    sender: sender === undefined ? null : userView(ctx, sender),
    device: message.deviceId === "" ? null : "web",
    device_id: message.deviceId,
    deleted: ctx.deletedAs === "boolean" ? deleted : deleted ? String(message.deletedAt) : null,
    is_deleted_by_manager: message.deletedByManager,
    kind: message.kind,
    type: message.type,
    location,
    is_forwarded: message.isForwarded,
    metainfo: message.metainfo,
    // Sic: the real server's spelling.
    reciever,
    files,
    has_file_attached: files.length > 0,
    likes: message.likes.size,
    liked: message.likes.has(viewerId),
    flagged: false,
    tags: [],
    links: [],
    seen: [],
    seen_by_others: false,
    unread: false,
    encrypted: message.encrypted,
    iv: deleted ? null : message.iv,
    reply_to: message.replyTo,
    reactions: [],
    webhook: null,
  };
}
