/**
 * Stashcat's client API as the bridge uses it: every call a form-encoded POST carrying the session's
 * client_key and the device id, every answer an envelope `{status: {value, short_message, message},
 * payload}`. Stashcat's field names and quirks stay in this module and messages.ts; callers see plain
 * objects and fedgate's errors.
 *
 * The session (client_key) is kept across restarts through the session store, because a fresh login makes
 * every other client of the account show a "new login" notice. When the server calls it expired
 * (`auth_invalid`), the client logs in once more and repeats the call.
 *
 * Neither the password, the client_key, keys nor message text go into a log line or an error.
 */
import { randomUUID } from "node:crypto";
import { FormData, request } from "undici";
import { FedgateError, PermanentError, TransientError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import { networkFailureReason } from "../kit/fetchAttachment.js";
import { readUpTo } from "../kit/readUpTo.js";
import {
  isObject,
  parseMessage as parseWireMessage,
  toBool,
  toInt,
  toText,
  type ChatRef,
  type StashcatMessage,
} from "./messages.js";

export type { ChatRef, StashcatMessage } from "./messages.js";
/** Normalises one wire message object (message/content, message/send, push); FG_NATIVE_INVALID if broken. */
export { parseMessage } from "./messages.js";

export interface StashcatSessionStore {
  load(): Promise<string | undefined>;
  save(clientKey: string): Promise<void>;
}

export interface StashcatClientOptions {
  /** The REST API's base, e.g. https://api.stashcat.com/. */
  apiUrl: string;
  email: string;
  password: string;
  /** Stable per installation: Stashcat ties the session to it. */
  deviceId: string;
  /** How the account's other clients see this one, e.g. "fedgate". */
  appName: string;
  log: Logger;
  /** Longest time for one call, its answer included; default 30 s. */
  requestTimeoutMs?: number;
  /** Longest time for one upload chunk or a download; default 120 s. */
  transferTimeoutMs?: number;
  /** Keeps the client_key across restarts: a fresh login makes every other client of the account show a "new login" notice. */
  sessionStore?: StashcatSessionStore;
}

export interface StashcatUser {
  id: number;
  firstName: string;
  lastName: string;
  /** PEM SPKI, to wrap chat keys for this user. */
  publicKey?: string;
}

export interface StashcatChannel {
  id: number;
  name: string;
  encrypted: boolean;
  /** This account's wrapped chat key (base64 RSA-OAEP, or 64 hex characters of the raw key). */
  key?: string;
}

export interface StashcatFileKey {
  chatType: string;
  chatId: number;
  /** Hex: the file key under the chat key. */
  key: string;
  /** Hex IV of `key`. */
  iv: string;
  /** The chat key wrapped for this account, when the server sends it along. */
  chatKey?: string;
}

export interface StashcatFileInfo {
  id: number;
  name: string;
  size: number;
  mediaType: string;
  encrypted: boolean;
  /** Hex IV of the file's body. */
  iv?: string;
  keys: StashcatFileKey[];
}

export interface OutgoingMessage {
  /** Plaintext, or lowercase hex ciphertext when `encrypted`. */
  text: string;
  iv?: string;
  encrypted: boolean;
  fileIds?: number[];
  replyTo?: number;
  markdown?: boolean;
  /** Goes in `verification`, which Stashcat stores and shows again and no one checks; default "". */
  verification?: string;
}

export interface UploadFile {
  name: string;
  mediaType: string;
  /** Already encrypted with the file key. */
  data: Buffer;
  /** Hex IV of `data`. */
  iv: string;
}

type Json = Record<string, unknown>;
type Field = string | number | boolean | readonly unknown[] | Json | undefined;

/** Largest envelope read; a page of 50 messages with their sender objects is some 100 KiB. */
const JSON_LIMIT = 8 * 1024 * 1024;
/** resumable.js's chunk size, as Stashcat's clients use it. */
const CHUNK_SIZE = 5 * 1024 * 1024;
/** How much of the server's own error text goes into an error message. */
const STATUS_TEXT_LIMIT = 200;
/** Statuses that say "later", not "never". */
const RETRYABLE = new Set([408, 425, 429]);

function invalidAnswer(endpoint: string, reason: string): PermanentError {
  return new PermanentError("FG_NATIVE_INVALID", `Stashcat ${endpoint}: ${reason}`, {
    detail: { endpoint, reason },
  });
}

/** `short_message` is sometimes `false` instead of a string (on OK answers, but be lenient throughout). */
function statusText(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/**
 * The payload of one answer of the API. A body that is not the envelope is FG_NATIVE_INVALID; a status
 * other than OK is FG_PEER_REFUSED with the server's `short_message` (such as auth_invalid) in the detail.
 */
export function parseEnvelope(endpoint: string, body: string): Json {
  let answer: unknown;
  try {
    answer = JSON.parse(body);
  } catch {
    throw invalidAnswer(endpoint, "the answer is not JSON");
  }
  if (!isObject(answer)) throw invalidAnswer(endpoint, "the answer is not a JSON object");
  const status = answer["status"];
  if (!isObject(status)) throw invalidAnswer(endpoint, "the answer has no status");
  const value = status["value"];
  if (typeof value !== "string") throw invalidAnswer(endpoint, "the status has no value");
  if (value !== "OK") {
    const shortMessage = statusText(status["short_message"]);
    const text = statusText(status["message"]).slice(0, STATUS_TEXT_LIMIT);
    const said = [shortMessage, text].filter((part) => part !== "").join(": ");
    throw new PermanentError(
      "FG_PEER_REFUSED",
      `Stashcat ${endpoint} refused${said === "" ? ` (${value.slice(0, 40)})` : `: ${said}`}`,
      { detail: { endpoint, shortMessage } },
    );
  }
  // Endpoints with nothing to say answer an empty payload, which a PHP server may encode as [].
  const payload = answer["payload"];
  return isObject(payload) ? payload : {};
}

/** The session is no longer valid: the server's one signal to log in again. */
export function isAuthInvalid(error: unknown): boolean {
  return (
    error instanceof FedgateError &&
    error.code === "FG_PEER_REFUSED" &&
    error.detail["shortMessage"] === "auth_invalid"
  );
}

function encodeField(value: Exclude<Field, undefined>): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  // Lists and objects travel as JSON inside one form field.
  return JSON.stringify(value);
}

function chatFields(prefix: "source" | "target", chat: ChatRef): Record<string, Field> {
  return { [prefix]: chat.type, [`${chat.type}_id`]: chat.id };
}

export class StashcatClient {
  /** Base URL with a trailing slash. */
  private readonly base: string;
  private readonly email: string;
  // Private fields: secrets stay out of util.inspect and JSON.stringify of the client.
  readonly #password: string;
  #clientKey = "";
  #userId = 0;
  #socketId = "";
  /** A login under way after auth_invalid, which concurrent calls share. */
  #renewing: Promise<void> | undefined;
  readonly #renewalListeners = new Set<() => void>();
  private readonly deviceId: string;
  private readonly appName: string;
  private readonly log: Logger;
  private readonly requestTimeoutMs: number;
  private readonly transferTimeoutMs: number;
  private readonly sessionStore: StashcatSessionStore | undefined;

  private constructor(options: StashcatClientOptions) {
    let url: URL;
    try {
      url = new URL(options.apiUrl);
    } catch {
      throw new PermanentError("FG_CONFIG_INVALID", "the Stashcat API URL is not a URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new PermanentError(
        "FG_CONFIG_INVALID",
        `the Stashcat API URL must be http or https, not ${url.protocol}`,
      );
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, "")}/`;
    this.email = options.email;
    this.#password = options.password;
    this.deviceId = options.deviceId;
    this.appName = options.appName;
    this.log = options.log;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.transferTimeoutMs = options.transferTimeoutMs ?? 120_000;
    this.sessionStore = options.sessionStore;
  }

  /** A client with a session: the stored client_key if the server still accepts it, else a fresh login. */
  static async connect(options: StashcatClientOptions): Promise<StashcatClient> {
    const client = new StashcatClient(options);
    const stored = await client.loadSession();
    if (stored === undefined || !(await client.resume(stored))) await client.login();
    return client;
  }

  get userId(): number {
    return this.#userId;
  }

  /** The `hidden_id` the push channel authenticates with. */
  get socketId(): string {
    return this.#socketId;
  }

  get clientKey(): string {
    return this.#clientKey;
  }

  /**
   * Asks the server whether the session still holds and logs in again if not. For the push channel, which
   * has no answer of its own when it is refused.
   */
  async checkSession(): Promise<void> {
    const key = this.#clientKey;
    let valid: boolean;
    try {
      valid = toBool((await this.callWith("auth/check", this.checkFields(), key))["success"]) === true;
    } catch (error) {
      if (!isAuthInvalid(error)) throw error;
      valid = false;
    }
    if (!valid) await this.renewSession(key);
  }

  /**
   * Calls `listener` after each login that replaced an expired session, so that the push channel can
   * authenticate with the new client_key at once. Returns the function that removes it.
   */
  onSessionRenewed(listener: () => void): () => void {
    this.#renewalListeners.add(listener);
    return () => this.#renewalListeners.delete(listener);
  }

  /**
   * `security/get_private_key`'s locked private key (a JSON string) for crypto.ts's unlockPrivateKey: the JWK
   * form first (`format=jwk`, as gostashcat asks), else the legacy PEM form, which an account made by an
   * older client may hold alone (the server then refuses the JWK form, or a server that ignores `format`
   * hands out the form it has).
   */
  async lockedPrivateKey(): Promise<string> {
    const endpoint = "security/get_private_key";
    try {
      const jwk = await this.privateKeyIn({ format: "jwk", type: "encryption" });
      if (jwk !== undefined) return jwk;
    } catch (error) {
      if (!(error instanceof FedgateError && error.code === "FG_PEER_REFUSED")) throw error;
      this.log.info(
        { endpoint, code: error.code },
        "Stashcat private key: no JWK form; taking the legacy form",
      );
    }
    const legacy = await this.privateKeyIn({});
    if (legacy === undefined) throw invalidAnswer(endpoint, "the answer has no private key");
    return legacy;
  }

  private async privateKeyIn(fields: Record<string, Field>): Promise<string | undefined> {
    const keys = (await this.call("security/get_private_key", fields))["keys"];
    const locked = isObject(keys) ? keys["private_key"] : undefined;
    if (typeof locked === "string" && locked !== "") return locked;
    // Tolerated: the same object, not yet encoded as a string.
    if (isObject(locked)) return JSON.stringify(locked);
    return undefined;
  }

  async userInfo(id: number): Promise<StashcatUser> {
    const endpoint = "users/info";
    const user = (await this.call(endpoint, { user_id: id, withkey: true }))["user"];
    if (!isObject(user)) throw invalidAnswer(endpoint, "the answer has no user");
    const userId = toInt(user["id"]);
    if (userId === undefined) throw invalidAnswer(endpoint, "the user has no id");
    const result: StashcatUser = {
      id: userId,
      firstName: typeof user["first_name"] === "string" ? user["first_name"] : "",
      lastName: typeof user["last_name"] === "string" ? user["last_name"] : "",
    };
    const publicKey = toText(user["public_key"]);
    if (publicKey !== undefined) result.publicKey = publicKey;
    return result;
  }

  /** The companies (organisations) this account belongs to. */
  async companies(): Promise<{ id: number; name: string }[]> {
    const endpoint = "company/member";
    const companies = (await this.call(endpoint, { no_cache: true }))["companies"];
    return this.list(endpoint, "companies", companies).map((company) => ({
      id: this.id(endpoint, "company", company["id"]),
      name: typeof company["name"] === "string" ? company["name"] : "",
    }));
  }

  /** The channels of a company this account is subscribed to. */
  async channels(companyId: number): Promise<StashcatChannel[]> {
    const endpoint = "channels/subscripted";
    const channels = (await this.call(endpoint, { company: companyId }))["channels"];
    return this.list(endpoint, "channels", channels).map((channel) => {
      const result: StashcatChannel = {
        id: this.id(endpoint, "channel", channel["id"]),
        name: typeof channel["name"] === "string" ? channel["name"] : "",
        encrypted: toBool(channel["encrypted"]) === true,
      };
      const key = toText(channel["key"]);
      if (key !== undefined) result.key = key;
      return result;
    });
  }

  /** This account's wrapped key of a channel or conversation; undefined when it has none (yet). */
  async chatKeyField(chat: ChatRef): Promise<string | undefined> {
    const details =
      chat.type === "channel" ? await this.channelInfo(chat.id) : await this.conversation(chat.id);
    return toText(details["key"]);
  }

  /** The user ids of a conversation's members. */
  async conversationMembers(id: number): Promise<number[]> {
    const endpoint = "message/conversation";
    const members = (await this.conversation(id))["members"];
    if (!Array.isArray(members)) throw invalidAnswer(endpoint, "the conversation has no member list");
    return members.map((member: unknown) =>
      this.id(endpoint, "member", isObject(member) ? member["id"] : member),
    );
  }

  /** Creates a conversation; `members` must include this account, each with the chat key wrapped for them. */
  async createEncryptedConversation(members: { id: number; key: string }[]): Promise<{ id: number }> {
    const endpoint = "message/createEncryptedConversation";
    const payload = await this.call(endpoint, {
      members: members.map((member) => ({ id: member.id, key: member.key })),
    });
    const conversation = payload["conversation"];
    if (!isObject(conversation)) throw invalidAnswer(endpoint, "the answer has no conversation");
    return { id: this.id(endpoint, "conversation", conversation["id"]) };
  }

  /**
   * A page of a chat's messages, oldest first. Only chat messages (kind "message" with an id) are returned;
   * an entry that is broken is logged and skipped, so one bad message cannot stall catching up.
   */
  async messages(
    chat: ChatRef,
    options: { limit: number; offset?: number; afterMessageId?: number },
  ): Promise<StashcatMessage[]> {
    const endpoint = "message/content";
    const payload = await this.call(endpoint, {
      ...chatFields("source", chat),
      limit: options.limit,
      offset: options.offset ?? 0,
      after_message_id: options.afterMessageId,
    });
    const entries = payload["messages"];
    if (!Array.isArray(entries)) throw invalidAnswer(endpoint, "the answer has no message list");
    const messages: StashcatMessage[] = [];
    for (const entry of entries as unknown[]) {
      const id = isObject(entry) ? toInt(entry["id"]) : undefined;
      if (id === undefined || id === 0 || !isObject(entry) || entry["kind"] !== "message") continue;
      try {
        messages.push(parseWireMessage(entry, chat));
      } catch (error) {
        if (!(error instanceof FedgateError)) throw error;
        this.log.warn(
          { endpoint, chat, code: error.code, ...error.detail },
          "Stashcat message skipped: it is malformed",
        );
      }
    }
    return messages.sort((a, b) => a.time - b.time || a.id - b.id);
  }

  /** Sends a message; returns it as the server stored it. */
  async send(chat: ChatRef, message: OutgoingMessage): Promise<StashcatMessage> {
    const endpoint = "message/send";
    const payload = await this.call(endpoint, {
      ...chatFields("target", chat),
      text: message.text,
      iv: message.iv,
      encrypted: message.encrypted,
      // Stashcat's web client puts an MD5 checksum here; nothing checks it and other clients send "".
      verification: message.verification ?? "",
      files: message.fileIds ?? [],
      url: [],
      type: "text",
      is_forwarded: false,
      metainfo: message.markdown === true ? { v: 1, style: "md" } : undefined,
      reply_to: message.replyTo,
    });
    try {
      return parseWireMessage(payload["message"], chat);
    } catch (error) {
      if (error instanceof FedgateError)
        throw invalidAnswer(endpoint, `the stored message is malformed (${error.message})`);
      throw error;
    }
  }

  async deleteMessage(id: number): Promise<void> {
    await this.call("message/delete", { message_id: id });
  }

  async like(id: number): Promise<void> {
    await this.call("message/like", { message_id: id });
  }

  async unlike(id: number): Promise<void> {
    await this.call("message/unlike", { message_id: id });
  }

  /** Uploads an encrypted file into a chat's storage in resumable.js chunks of 5 MiB; returns its id. */
  async uploadFile(chat: ChatRef, file: UploadFile): Promise<number> {
    const endpoint = "file/upload";
    const total = file.data.length;
    const chunks = Math.max(1, Math.ceil(total / CHUNK_SIZE));
    // resumable.js's upload id: what ties the chunks together on the server.
    const identifier = randomUUID();
    let last: Json = {};
    for (let number = 1; number <= chunks; number++) {
      const chunk = file.data.subarray((number - 1) * CHUNK_SIZE, Math.min(number * CHUNK_SIZE, total));
      const fields: Record<string, Field> = {
        resumableChunkNumber: number,
        resumableChunkSize: CHUNK_SIZE,
        resumableCurrentChunkSize: chunk.length,
        resumableTotalSize: total,
        resumableType: file.mediaType,
        resumableIdentifier: identifier,
        resumableFilename: file.name,
        resumableRelativePath: file.name,
        resumableTotalChunks: chunks,
        folder: 0,
        type: chat.type,
        type_id: chat.id,
        encrypted: true,
        iv: file.iv,
      };
      last = await this.withSession(endpoint, async (key) => {
        const form = new FormData();
        for (const [name, value] of Object.entries(this.authFields(fields, key)))
          if (value !== undefined) form.append(name, encodeField(value));
        // The name and type Stashcat's web client gives every chunk.
        form.append("file", new Blob([chunk], { type: "application/octet-stream" }), "[object Object]");
        const answer = await this.exchange(endpoint, form, this.transferTimeoutMs, JSON_LIMIT);
        return this.envelopeOf(endpoint, answer);
      });
    }
    const uploaded = last["file"];
    if (!isObject(uploaded)) throw invalidAnswer(endpoint, "the last chunk's answer has no file");
    return this.id(endpoint, "file", uploaded["id"]);
  }

  /** Gives a chat's members the file key: `key` is the file key under the chat key, both hex. */
  async setFileAccessKey(fileId: number, chat: ChatRef, key: string, iv: string): Promise<void> {
    await this.call("security/set_file_access_key", {
      file_id: fileId,
      target: chat.type,
      target_id: chat.id,
      key,
      iv,
    });
  }

  async fileInfo(id: number): Promise<StashcatFileInfo> {
    const endpoint = "file/info";
    const file = (await this.call(endpoint, { file_id: id }))["file"];
    if (!isObject(file)) throw invalidAnswer(endpoint, "the answer has no file");
    // `size` is a byte count on some servers; `size_byte` is the field that always is one.
    const size = toInt(file["size_byte"]) ?? toInt(file["size"]);
    if (size === undefined) throw invalidAnswer(endpoint, "the file has no size");
    const keys = file["keys"] ?? [];
    const info: StashcatFileInfo = {
      id: this.id(endpoint, "file", file["id"]),
      name: typeof file["name"] === "string" ? file["name"] : "",
      size,
      mediaType: toText(file["mime"]) ?? "application/octet-stream",
      encrypted: toBool(file["encrypted"]) === true,
      keys: this.list(endpoint, "keys", keys).map((entry) => {
        const key = toText(entry["key"]);
        const iv = toText(entry["iv"]);
        if (key === undefined || iv === undefined)
          throw invalidAnswer(endpoint, "a file key lacks its key or IV");
        const fileKey: StashcatFileKey = {
          chatType: typeof entry["type"] === "string" ? entry["type"] : "",
          chatId: this.id(endpoint, "chat", entry["chat_id"]),
          key,
          iv,
        };
        const chatKey = toText(entry["chat_key"]);
        if (chatKey !== undefined) fileKey.chatKey = chatKey;
        return fileKey;
      }),
    };
    const iv = toText(file["e2e_iv"]);
    if (iv !== undefined) info.iv = iv;
    return info;
  }

  /** A file's stored bytes (ciphertext for encrypted files); FG_ATTACHMENT_INVALID above `maxBytes`. */
  async download(id: number, maxBytes: number): Promise<Buffer> {
    const endpoint = "file/download";
    return this.withSession(endpoint, async (key) => {
      const answer = await this.exchange(
        endpoint,
        this.form(this.authFields({}, key)),
        this.transferTimeoutMs,
        maxBytes,
        `id=${String(id)}`,
      );
      if (answer.status !== 200) this.refusalIn(endpoint, answer);
      if (answer.bytes === undefined)
        throw new PermanentError(
          "FG_ATTACHMENT_INVALID",
          `Stashcat file ${String(id)} is larger than the limit of ${String(maxBytes)} bytes`,
          { detail: { endpoint, fileId: id, maxBytes } },
        );
      // The bytes come raw, but a refusal (an expired session, an unknown file) comes as the usual envelope,
      // whatever the content type says. Ciphertext never parses as one.
      const refusal = envelopeRefusal(endpoint, answer.bytes);
      if (refusal !== undefined) throw refusal;
      return answer.bytes;
    });
  }

  // The session.

  private checkFields(): Record<string, Field> {
    return { app_name: this.appName, encrypted: true, callable: true, key_transfer_support: false };
  }

  private async loadSession(): Promise<string | undefined> {
    if (this.sessionStore === undefined) return undefined;
    try {
      return toText(await this.sessionStore.load());
    } catch (error) {
      this.log.warn({ err: errorSummary(error) }, "Stashcat session not loaded; logging in afresh");
      return undefined;
    }
  }

  /** Takes up a stored session if the server still accepts it; false when it does not. */
  private async resume(key: string): Promise<boolean> {
    let user: unknown;
    try {
      const check = await this.callWith("auth/check", this.checkFields(), key);
      if (toBool(check["success"]) !== true) return false;
      user = (await this.callWith("users/me", { withkey: false }, key))["user"];
    } catch (error) {
      // Any refusal means the session is gone; a server out of reach is no reason to log in afresh.
      if (error instanceof FedgateError && error.code === "FG_PEER_REFUSED") return false;
      throw error;
    }
    const identity = this.identityOf("users/me", user);
    if (identity.socketId === undefined) {
      this.log.info({}, "Stashcat users/me names no socket id; logging in afresh");
      return false;
    }
    this.#clientKey = key;
    this.#userId = identity.userId;
    this.#socketId = identity.socketId;
    this.log.info({ userId: identity.userId }, "Stashcat session resumed");
    return true;
  }

  private async login(): Promise<void> {
    const endpoint = "auth/login";
    const payload = await this.callWith(
      endpoint,
      { email: this.email, password: this.#password, ...this.checkFields() },
      undefined,
    );
    const key = toText(payload["client_key"]);
    if (key === undefined) throw invalidAnswer(endpoint, "the answer has no client_key");
    const identity = this.identityOf(endpoint, payload["userinfo"]);
    if (identity.socketId === undefined) throw invalidAnswer(endpoint, "the user has no socket_id");
    this.#clientKey = key;
    this.#userId = identity.userId;
    this.#socketId = identity.socketId;
    this.log.info({ userId: identity.userId }, "Stashcat login");
    if (this.sessionStore === undefined) return;
    try {
      await this.sessionStore.save(key);
    } catch (error) {
      // Only the next restart suffers: it logs in afresh.
      this.log.warn({ err: errorSummary(error) }, "Stashcat session not saved");
    }
  }

  private identityOf(endpoint: string, user: unknown): { userId: number; socketId: string | undefined } {
    if (!isObject(user)) throw invalidAnswer(endpoint, "the answer has no user");
    const userId = toInt(user["id"]);
    if (userId === undefined || userId === 0) throw invalidAnswer(endpoint, "the user has no id");
    const socketId = user["socket_id"];
    return {
      userId,
      socketId: typeof socketId === "number" ? String(socketId) : toText(socketId),
    };
  }

  /** Logs in again unless another call did since `staleKey` failed; concurrent callers share one login. */
  private async renewSession(staleKey: string): Promise<void> {
    if (this.#clientKey !== staleKey) return;
    this.#renewing ??= this.login()
      .then(() => {
        for (const listener of this.#renewalListeners)
          try {
            listener();
          } catch (error) {
            // A listener's failure is its own; the calls waiting for the session go on.
            this.log.error({ err: errorSummary(error) }, "Stashcat session renewal listener failed");
          }
      })
      .finally(() => {
        this.#renewing = undefined;
      });
    await this.#renewing;
  }

  /** Runs one exchange with the session; after auth_invalid, logs in once more and runs it again. */
  private async withSession<T>(endpoint: string, attempt: (clientKey: string) => Promise<T>): Promise<T> {
    const key = this.#clientKey;
    try {
      return await attempt(key);
    } catch (error) {
      if (!isAuthInvalid(error)) throw error;
      this.log.info({ endpoint }, "Stashcat session expired; logging in again");
      await this.renewSession(key);
      return attempt(this.#clientKey);
    }
  }

  // The transport.

  private call(endpoint: string, fields: Record<string, Field>): Promise<Json> {
    return this.withSession(endpoint, (key) => this.callWith(endpoint, fields, key));
  }

  /** One call with the given client_key (none for auth/login), without logging in again. */
  private async callWith(
    endpoint: string,
    fields: Record<string, Field>,
    clientKey: string | undefined,
  ): Promise<Json> {
    const answer = await this.exchange(
      endpoint,
      this.form(
        clientKey === undefined
          ? { ...fields, device_id: this.deviceId }
          : this.authFields(fields, clientKey),
      ),
      this.requestTimeoutMs,
      JSON_LIMIT,
    );
    return this.envelopeOf(endpoint, answer);
  }

  private authFields(fields: Record<string, Field>, clientKey: string): Record<string, Field> {
    return { ...fields, client_key: clientKey, device_id: this.deviceId };
  }

  private form(fields: Record<string, Field>): URLSearchParams {
    const form = new URLSearchParams();
    for (const [name, value] of Object.entries(fields))
      if (value !== undefined) form.append(name, encodeField(value));
    return form;
  }

  private envelopeOf(endpoint: string, answer: Answer): Json {
    if (answer.status < 200 || answer.status >= 300) this.refusalIn(endpoint, answer);
    if (answer.bytes === undefined)
      throw invalidAnswer(endpoint, `the answer is larger than ${String(JSON_LIMIT)} bytes`);
    return parseEnvelope(endpoint, answer.bytes.toString("utf8"));
  }

  /** Throws the error an answer that is not a success stands for: its envelope's, or its HTTP status. */
  private refusalIn(endpoint: string, answer: Answer): never {
    if (answer.status >= 500 || RETRYABLE.has(answer.status)) throw unavailable(endpoint, answer.status);
    const refusal = envelopeRefusal(endpoint, answer.bytes);
    if (refusal !== undefined) throw refusal;
    // A wrong URL or a proxy's page: nothing Stashcat said.
    throw new PermanentError("FG_PEER_REFUSED", `Stashcat ${endpoint}: HTTP ${String(answer.status)}`, {
      detail: { endpoint, status: answer.status },
    });
  }

  /** One POST; its status and body (undefined when larger than `limit`). Network failures are transient. */
  private async exchange(
    endpoint: string,
    body: URLSearchParams | FormData,
    timeoutMs: number,
    limit: number,
    query?: string,
  ): Promise<Answer> {
    const signal = AbortSignal.timeout(timeoutMs);
    const started = Date.now();
    let answer: Answer;
    try {
      const response = await request(`${this.base}${endpoint}${query === undefined ? "" : `?${query}`}`, {
        method: "POST",
        ...(body instanceof URLSearchParams
          ? {
              headers: { "content-type": "application/x-www-form-urlencoded" },
              body: body.toString(),
            }
          : { body }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
      });
      answer = {
        status: response.statusCode,
        bytes: await readUpTo(response.body, limit, response.headers["content-length"]),
      };
    } catch (cause) {
      const reason = networkFailureReason(cause, signal, `no answer within ${String(timeoutMs)} ms`);
      this.log.debug({ endpoint, reason }, "Stashcat request failed");
      throw new TransientError("FG_PEER_UNAVAILABLE", `Stashcat ${endpoint}: ${reason}`, {
        cause,
        detail: { endpoint },
      });
    }
    this.log.debug({ endpoint, status: answer.status, durationMs: Date.now() - started }, "Stashcat request");
    return answer;
  }

  // Answers.

  private async channelInfo(id: number): Promise<Json> {
    const endpoint = "channels/info";
    const payload = await this.call(endpoint, { channel_id: id, without_members: true });
    // The one channel comes under the plural key; the singular and a one-element list are tolerated.
    let channel = payload["channels"] ?? payload["channel"];
    if (Array.isArray(channel)) channel = channel[0];
    if (!isObject(channel)) throw invalidAnswer(endpoint, "the answer has no channel");
    return channel;
  }

  private async conversation(id: number): Promise<Json> {
    const endpoint = "message/conversation";
    const conversation = (await this.call(endpoint, { conversation_id: id }))["conversation"];
    if (!isObject(conversation)) throw invalidAnswer(endpoint, "the answer has no conversation");
    return conversation;
  }

  private list(endpoint: string, what: string, value: unknown): Json[] {
    if (!Array.isArray(value) || !value.every(isObject))
      throw invalidAnswer(endpoint, `the answer has no list of ${what}`);
    return value;
  }

  private id(endpoint: string, what: string, value: unknown): number {
    const id = toInt(value);
    if (id === undefined) throw invalidAnswer(endpoint, `a ${what} has no valid id`);
    return id;
  }
}

interface Answer {
  status: number;
  bytes: Buffer | undefined;
}

/** Largest body looked at for an envelope where raw bytes were expected. */
const ENVELOPE_SNIFF_LIMIT = 64 * 1024;

/** The refusal an envelope in `bytes` reports, if `bytes` is one that is not OK. */
function envelopeRefusal(endpoint: string, bytes: Buffer | undefined): FedgateError | undefined {
  if (bytes === undefined || bytes.length > ENVELOPE_SNIFF_LIMIT) return undefined;
  if (!bytes.toString("latin1").trimStart().startsWith("{")) return undefined;
  try {
    parseEnvelope(endpoint, bytes.toString("utf8"));
  } catch (error) {
    if (error instanceof FedgateError && error.code === "FG_PEER_REFUSED") return error;
  }
  return undefined;
}

function unavailable(endpoint: string, status: number): TransientError {
  return new TransientError("FG_PEER_UNAVAILABLE", `Stashcat ${endpoint}: HTTP ${String(status)}`, {
    detail: { endpoint, status },
  });
}

/** An error for a log line: its code and message, without a stack or a cause that might hold more. */
function errorSummary(error: unknown): { code: string; message: string } {
  if (error instanceof FedgateError) return { code: error.code, message: error.message };
  return { code: "FG_INTERNAL", message: error instanceof Error ? error.message : String(error) };
}
