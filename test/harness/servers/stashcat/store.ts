/**
 * Everything a Stashcat test server holds, in memory: users with their locked keys, sessions, channels and
 * conversations with each member's wrapped chat key, messages and files. It enforces who may see and do
 * what; it never decrypts anything, as the real server cannot.
 */
import { createHash, randomBytes } from "node:crypto";
import { lockPrivateKey, wrapChatKey } from "../../../../bridges/stashcat/crypto.js";
import { Refusal } from "./envelope.js";
import type { Seed } from "./seed.js";

export type ChatType = "channel" | "conversation";

export interface User {
  id: number;
  email: string;
  password: string;
  firstName: string;
  lastName: string;
  companyIds: number[];
  /** PEM SPKI. */
  publicKey: string;
  /** The JSON strings `security/get_private_key` returns, per form the account has its key in. */
  lockedPrivateKeys: { pem?: string; jwk?: string };
  /** The `hidden_id` the push login presents; never the user id. */
  socketId: string;
  created: number;
}

export interface Session {
  clientKey: string;
  userId: number;
  deviceId: string;
  appName: string;
  created: number;
  /** Milliseconds since the epoch; undefined: never. */
  expiresAt: number | undefined;
  revoked: boolean;
}

interface ChatBase {
  id: number;
  memberIds: Set<number>;
  /** Base64 RSA-OAEP of the chat key, per member. */
  keys: Map<number, string>;
  created: number;
  lastAction: number;
}

export interface Channel extends ChatBase {
  type: "channel";
  name: string;
  description: string;
  companyId: number;
  managerIds: Set<number>;
  /** The raw key, known only for seeded channels: served as hex by deployments with that quirk. */
  rawKey: Buffer | undefined;
}

export interface Conversation extends ChatBase {
  type: "conversation";
  /** Names the key its members are to get, when it was created from ids alone (hex); else null. */
  uniqueIdentifier: string | null;
}

export type Chat = Channel | Conversation;

export interface Location {
  latitude: string;
  longitude: string;
}

export interface Message {
  id: number;
  chatType: ChatType;
  chatId: number;
  /** "message" for chat messages; other kinds are the chat's own entries, which clients skip. */
  kind: "message" | "channel_created";
  senderId: number;
  deviceId: string;
  /** As sent: hex ciphertext when encrypted. */
  text: string;
  iv: string | null;
  encrypted: boolean;
  verification: string;
  hash: string;
  /** Seconds since the epoch. */
  time: number;
  microTime: string;
  type: string;
  fileIds: number[];
  urls: unknown[];
  metainfo: unknown;
  isForwarded: boolean;
  replyTo: number | null;
  location: Location | undefined;
  alarm: boolean;
  /** Seconds since the epoch when it was deleted; null while it lives. */
  deletedAt: number | null;
  deletedByManager: boolean;
  likes: Set<number>;
}

export interface FileKey {
  type: ChatType;
  chatId: number;
  /** Hex: the file key under the chat key. */
  key: string;
  iv: string;
}

export interface StoredFile {
  id: number;
  name: string;
  mime: string;
  ownerId: number;
  /** Where it was uploaded: a chat, or the owner's personal folder. */
  folderType: ChatType | "personal";
  typeId: number;
  encrypted: boolean;
  /** Hex IV of the body's encryption; null when not encrypted. */
  e2eIv: string | null;
  /** Undefined while chunks are still coming. */
  bytes: Buffer | undefined;
  uploaded: number;
  width: number | null;
  height: number | null;
  keys: FileKey[];
  timesDownloaded: number;
  lastDownload: number | null;
}

export interface Upload {
  ownerId: number;
  fileId: number;
  totalChunks: number;
  totalSize: number;
  chunks: Map<number, Buffer>;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function microTime(): string {
  const ms = Date.now();
  return `${String(Math.floor(ms / 1000))}.${String(ms % 1000).padStart(3, "0")}000`;
}

function notFound(what: string): Refusal {
  return new Refusal("not_found", `${what} does not exist`);
}

export class Store {
  private readonly users = new Map<number, User>();
  private readonly sessions = new Map<string, Session>();
  readonly companies = new Map<number, { id: number; name: string }>();
  private readonly channels = new Map<number, Channel>();
  private readonly conversations = new Map<number, Conversation>();
  private readonly messages = new Map<number, Message>();
  private readonly files = new Map<number, StoredFile>();
  private readonly uploads = new Map<string, Upload>();
  // Separate ranges so that an id mistaken for another kind is not found rather than found wrong.
  private nextMessageId = 50_001;
  private nextFileId = 90_001;
  private nextConversationId: number;

  constructor(
    seed: Seed,
    private readonly clientKeyTtlMs: number | undefined,
  ) {
    const now = nowSeconds();
    for (const company of seed.companies) this.companies.set(company.id, { ...company });
    const allCompanies = seed.companies.map((c) => c.id);
    for (const u of seed.users)
      this.users.set(u.id, {
        id: u.id,
        email: u.email.toLowerCase(),
        password: u.password,
        firstName: u.firstName,
        lastName: u.lastName,
        companyIds: u.companyIds ?? allCompanies,
        publicKey: u.publicKey,
        lockedPrivateKeys: Object.fromEntries(
          u.keyForms.map((form) => [form, lockPrivateKey(u.privateKey, u.encryptionPassword, form)]),
        ),
        socketId: randomBytes(16).toString("hex"),
        created: now,
      });
    for (const c of seed.channels) {
      const memberIds = new Set(c.memberIds);
      const channel: Channel = {
        type: "channel",
        id: c.id,
        name: c.name,
        description: c.description ?? "",
        companyId: c.companyId,
        memberIds,
        managerIds: new Set(c.managerIds ?? []),
        keys: this.wrapFor(c.key, memberIds),
        rawKey: c.key,
        created: now,
        lastAction: now,
      };
      this.channels.set(c.id, channel);
      // Channels open with an entry of their own, which clients must tell from chat messages.
      const creator = c.managerIds?.[0] ?? c.memberIds[0];
      if (creator !== undefined)
        this.addEntry(channel, creator, "", { kind: "channel_created", type: "channel_created" });
    }
    for (const c of seed.conversations) {
      const memberIds = new Set(c.memberIds);
      this.conversations.set(c.id, {
        type: "conversation",
        id: c.id,
        memberIds,
        keys: this.wrapFor(c.key, memberIds),
        uniqueIdentifier: null,
        created: now,
        lastAction: now,
      });
    }
    this.nextConversationId = Math.max(2000, ...seed.conversations.map((c) => c.id)) + 1;
  }

  private wrapFor(key: Buffer, memberIds: Set<number>): Map<number, string> {
    return new Map([...memberIds].map((id) => [id, wrapChatKey(key, this.user(id).publicKey)]));
  }

  // ---- users and sessions

  user(id: number): User {
    const user = this.users.get(id);
    if (user === undefined) throw notFound(`user ${String(id)}`);
    return user;
  }

  findUser(id: number): User | undefined {
    return this.users.get(id);
  }

  allUsers(): User[] {
    return [...this.users.values()];
  }

  login(email: string, password: string, deviceId: string, appName: string): Session | undefined {
    const user = [...this.users.values()].find((u) => u.email === email.trim().toLowerCase());
    if (user?.password !== password) return undefined;
    const created = Date.now();
    const session: Session = {
      clientKey: randomBytes(20).toString("hex"),
      userId: user.id,
      deviceId,
      appName,
      created,
      expiresAt: this.clientKeyTtlMs === undefined ? undefined : created + this.clientKeyTtlMs,
      revoked: false,
    };
    this.sessions.set(session.clientKey, session);
    return session;
  }

  /** The live session of this key on this device; a key is bound to the device that logged in. */
  session(clientKey: string, deviceId: string): Session | undefined {
    const session = this.sessions.get(clientKey);
    if (session === undefined || session.deviceId !== deviceId || !this.isLive(session)) return undefined;
    return session;
  }

  isLive(session: Session): boolean {
    return !session.revoked && (session.expiresAt === undefined || Date.now() < session.expiresAt);
  }

  logout(session: Session): void {
    session.revoked = true;
    this.sessions.delete(session.clientKey);
  }

  expireSessions(): void {
    for (const session of this.sessions.values()) session.revoked = true;
    this.sessions.clear();
  }

  // ---- chats

  chat(type: ChatType, id: number): Chat {
    const chat = type === "channel" ? this.channels.get(id) : this.conversations.get(id);
    if (chat === undefined) throw notFound(`${type} ${String(id)}`);
    return chat;
  }

  /** The chat, refused unless the user is a member. */
  memberChat(type: ChatType, id: number, userId: number): Chat {
    const chat = this.chat(type, id);
    if (!chat.memberIds.has(userId))
      throw new Refusal("no_permission", `you are not a member of ${type} ${String(id)}`);
    return chat;
  }

  channelsOf(userId: number, companyId: number): Channel[] {
    return [...this.channels.values()].filter((c) => c.companyId === companyId && c.memberIds.has(userId));
  }

  conversationsOf(userId: number): Conversation[] {
    return [...this.conversations.values()]
      .filter((c) => c.memberIds.has(userId))
      .sort((a, b) => b.lastAction - a.lastAction || b.id - a.id);
  }

  /** The conversation of exactly these members, if there is one. */
  findConversation(memberIds: Set<number>): Conversation | undefined {
    return [...this.conversations.values()].find(
      (c) => c.memberIds.size === memberIds.size && [...memberIds].every((id) => c.memberIds.has(id)),
    );
  }

  /** A new conversation of these members; `keys` holds the wrapped keys of those who have one yet. */
  createConversation(
    memberIds: Set<number>,
    keys: Map<number, string>,
    uniqueIdentifier: string | null = null,
  ): Conversation {
    const now = nowSeconds();
    const conversation: Conversation = {
      type: "conversation",
      id: this.nextConversationId++,
      memberIds: new Set(memberIds),
      keys: new Map(keys),
      uniqueIdentifier,
      created: now,
      lastAction: now,
    };
    this.conversations.set(conversation.id, conversation);
    return conversation;
  }

  // ---- messages

  /** The chat's entries, oldest first. */
  messagesOf(chat: Chat): Message[] {
    return [...this.messages.values()]
      .filter((m) => m.chatType === chat.type && m.chatId === chat.id)
      .sort((a, b) => a.id - b.id);
  }

  message(id: number): Message {
    const message = this.messages.get(id);
    if (message === undefined) throw notFound(`message ${String(id)}`);
    return message;
  }

  addEntry(
    chat: Chat,
    senderId: number,
    deviceId: string,
    fields: Partial<Omit<Message, "id" | "chatType" | "chatId" | "senderId" | "deviceId">>,
  ): Message {
    const id = this.nextMessageId++;
    const text = fields.text ?? "";
    const message: Message = {
      kind: "message",
      text,
      iv: null,
      encrypted: false,
      verification: "",
      time: nowSeconds(),
      microTime: microTime(),
      type: "text",
      fileIds: [],
      urls: [],
      metainfo: null,
      isForwarded: false,
      replyTo: null,
      location: undefined,
      alarm: false,
      deletedAt: null,
      deletedByManager: false,
      likes: new Set(),
      ...fields,
      hash: createHash("md5")
        .update(`${String(id)}\0${text}`)
        .digest("hex"),
      id,
      chatType: chat.type,
      chatId: chat.id,
      senderId,
      deviceId,
    };
    this.messages.set(id, message);
    chat.lastAction = message.time;
    return message;
  }

  // ---- files

  file(id: number): StoredFile {
    const file = this.files.get(id);
    if (file?.bytes === undefined) throw notFound(`file ${String(id)}`);
    return file;
  }

  /** The owner, members of the chat it was uploaded to, and members of chats where it was sent. */
  mayRead(file: StoredFile, userId: number): boolean {
    if (file.ownerId === userId) return true;
    if (file.folderType !== "personal" && this.chat(file.folderType, file.typeId).memberIds.has(userId))
      return true;
    return [...this.messages.values()].some(
      (m) =>
        m.deletedAt === null &&
        m.fileIds.includes(file.id) &&
        this.chat(m.chatType, m.chatId).memberIds.has(userId),
    );
  }

  readableFile(id: number, userId: number): StoredFile {
    const file = this.file(id);
    if (!this.mayRead(file, userId))
      throw new Refusal("no_permission", `you may not read file ${String(id)}`);
    return file;
  }

  /** The upload under this key, begun (with its file's id reserved) at its first chunk. */
  upload(
    key: string,
    begin: () => Omit<StoredFile, "id" | "bytes" | "uploaded" | "keys" | "timesDownloaded" | "lastDownload">,
    totalChunks: number,
    totalSize: number,
  ): { upload: Upload; file: StoredFile } {
    const existing = this.uploads.get(key);
    if (existing !== undefined) {
      const file = this.files.get(existing.fileId);
      if (file !== undefined) return { upload: existing, file };
    }
    const file: StoredFile = {
      ...begin(),
      id: this.nextFileId++,
      bytes: undefined,
      uploaded: nowSeconds(),
      keys: [],
      timesDownloaded: 0,
      lastDownload: null,
    };
    this.files.set(file.id, file);
    const upload: Upload = {
      ownerId: file.ownerId,
      fileId: file.id,
      totalChunks,
      totalSize,
      chunks: new Map(),
    };
    this.uploads.set(key, upload);
    return { upload, file };
  }

  findUpload(key: string): Upload | undefined {
    return this.uploads.get(key);
  }

  /** Joins the chunks once all are there; true when the file is complete. */
  completeUpload(key: string, upload: Upload): boolean {
    if (upload.chunks.size < upload.totalChunks) return false;
    const file = this.files.get(upload.fileId);
    if (file === undefined) return false;
    const parts: Buffer[] = [];
    for (let n = 1; n <= upload.totalChunks; n++) {
      const chunk = upload.chunks.get(n);
      if (chunk === undefined) return false;
      parts.push(chunk);
    }
    const bytes = Buffer.concat(parts);
    this.uploads.delete(key);
    if (bytes.length !== upload.totalSize) {
      this.files.delete(file.id);
      throw new Refusal(
        "invalid_values",
        `the chunks hold ${String(bytes.length)} bytes, not the ${String(upload.totalSize)} announced`,
      );
    }
    file.bytes = bytes;
    file.uploaded = nowSeconds();
    return true;
  }

  pendingFile(id: number): StoredFile | undefined {
    return this.files.get(id);
  }
}
