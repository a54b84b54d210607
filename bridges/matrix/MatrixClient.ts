/**
 * The Matrix client-server API as the bridge uses it: as the application service, with the registration's
 * as_token, either as its own sender (the bridge bot) or as a user of its namespace (a ghost) through the
 * `user_id` query parameter (identity assertion). Everything about Matrix over HTTP stays here; callers see
 * fedgate's errors, with Matrix's errcode in their detail (see matrixErrcode).
 *
 * The as_token goes into the Authorization header only, never into a URL, a log line or an error; errors
 * name the path without its query string.
 */
import { request } from "undici";
import { FedgateError, PermanentError, TransientError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import { networkFailureReason } from "../kit/fetchAttachment.js";
import { readUpTo } from "../kit/readUpTo.js";
import type { DeviceRequestPath } from "./crypto/DeviceClient.js";

export interface MatrixClientOptions {
  /** The homeserver's client-server API base, e.g. http://synapse:8008. */
  homeserverUrl: string;
  /** The registration's as_token. */
  asToken: string;
  log: Logger;
  /** Longest time for one request, its answer included; default 30 s. */
  requestTimeoutMs?: number;
  /** Longest time for a media upload, which carries a whole file; default 120 s. */
  uploadTimeoutMs?: number;
}

export interface MatrixProfile {
  displayname?: string;
  avatar_url?: string;
}

/** The two parts of an mxc:// URI. */
export interface MxcUri {
  server: string;
  mediaId: string;
}

type Method = "GET" | "POST" | "PUT";
type Json = Record<string, unknown>;

interface CallOptions {
  /** Who acts: a user of the AS's namespace; undefined is the AS's own sender. */
  asUser?: string | undefined;
  /** Which of that user's devices acts (MSC3202 device masquerading): end-to-end encryption is per device. */
  asDevice?: string | undefined;
  query?: Record<string, string>;
  json?: Json;
  raw?: { data: Buffer; contentType: string };
  timeoutMs?: number;
  /** Largest answer read; default JSON_LIMIT. */
  limit?: number;
}

/** Largest JSON answer read; the client-server API's answers used here are a few KiB. */
const JSON_LIMIT = 1024 * 1024;
/** joined_members names every member, with display name and avatar: some 100 bytes each. */
const MEMBERS_LIMIT = 16 * 1024 * 1024;
/** Largest event the spec allows; it bounds a page of events read back. */
const MAX_EVENT_BYTES = 65_536;
/** How much of Matrix's `error` text goes into a message. */
const ERROR_TEXT_LIMIT = 300;
/** Statuses that say "later", not "never". */
const RETRYABLE = new Set([408, 429]);
// The spec's grammar: a host name, IPv4 or bracketed IPv6 address with an optional port; an opaque id.
const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/;
const MEDIA_ID = /^[A-Za-z0-9_-]+$/;

/** Matrix's errcode behind a failed call (M_FORBIDDEN, M_NOT_FOUND, …), when the homeserver sent one. */
export function matrixErrcode(error: unknown): string | undefined {
  if (!(error instanceof FedgateError)) return undefined;
  const errcode = error.detail["errcode"];
  return typeof errcode === "string" ? errcode : undefined;
}

/**
 * "There is no such thing" from the homeserver. Synapse 1.160 answers an unknown local user's profile with
 * 404 M_UNKNOWN ("No row found"), not M_NOT_FOUND. An unknown endpoint (404 M_UNRECOGNIZED, or a proxy's
 * page) is not that: a wrong homeserver URL must not read as an empty room.
 */
function isNotFound(error: unknown): boolean {
  const errcode = matrixErrcode(error);
  return (
    error instanceof FedgateError &&
    error.detail["status"] === 404 &&
    (errcode === "M_NOT_FOUND" || errcode === "M_UNKNOWN")
  );
}

/** Server name and media id of an mxc:// URI; FG_NATIVE_INVALID for anything else. */
export function parseMxc(mxc: string): MxcUri {
  const match = /^mxc:\/\/([^/]+)\/([^/?#]+)$/.exec(mxc);
  const server = match?.[1];
  const mediaId = match?.[2];
  if (server === undefined || mediaId === undefined || !SERVER_NAME.test(server) || !MEDIA_ID.test(mediaId))
    throw new PermanentError("FG_NATIVE_INVALID", "not a valid mxc:// URI", {
      detail: { mxc: mxc.slice(0, 300) },
    });
  return { server, mediaId };
}

const enc = encodeURIComponent;

function roomPath(roomId: string, ...rest: string[]): string {
  return ["/_matrix/client/v3/rooms", enc(roomId), ...rest.map(enc)].join("/");
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJson(bytes: Buffer | undefined): Json | undefined {
  if (bytes === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(bytes.toString("utf8"));
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The wait a 429 asks for: `retry_after_ms` in the body, else the Retry-After header (seconds). */
function retryAfterMs(answer: Json | undefined, header: string | string[] | undefined): number | undefined {
  const fromBody = answer?.["retry_after_ms"];
  if (typeof fromBody === "number" && Number.isFinite(fromBody) && fromBody >= 0) return fromBody;
  const seconds = typeof header === "string" && /^\d+$/.test(header.trim()) ? Number(header) : undefined;
  return seconds === undefined ? undefined : seconds * 1000;
}

export class MatrixClient {
  /** Base URL without a trailing slash. */
  private readonly base: string;
  // A private field: the token stays out of util.inspect and JSON.stringify of the client.
  readonly #asToken: string;
  private readonly log: Logger;
  private readonly requestTimeoutMs: number;
  private readonly uploadTimeoutMs: number;

  constructor(options: MatrixClientOptions) {
    let url: URL;
    try {
      url = new URL(options.homeserverUrl);
    } catch {
      throw new PermanentError("FG_CONFIG_INVALID", "the homeserver URL is not a URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new PermanentError(
        "FG_CONFIG_INVALID",
        `the homeserver URL must be http or https, not ${url.protocol}`,
      );
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
    this.#asToken = options.asToken;
    this.log = options.log;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.uploadTimeoutMs = options.uploadTimeoutMs ?? 120_000;
  }

  /**
   * The appservice ping (client-server API 1.7): the homeserver calls this AS's endpoint back and answers once
   * that answered, so it proves both ways. Its errors (M_CONNECTION_FAILED, M_CONNECTION_TIMEOUT,
   * M_BAD_STATUS) say the homeserver cannot reach the bridge.
   */
  async ping(appserviceId: string, timeoutMs: number): Promise<void> {
    await this.call("POST", `/_matrix/client/v1/appservice/${encodeURIComponent(appserviceId)}/ping`, {
      json: {},
      timeoutMs,
    });
  }

  /**
   * Registers a user of the AS's namespace (a ghost); one that exists already is fine. Synapse refuses to
   * act as a ghost through `user_id` before it is registered.
   */
  async registerUser(localpart: string): Promise<void> {
    try {
      await this.call("POST", "/_matrix/client/v3/register", {
        json: { type: "m.login.application_service", username: localpart, inhibit_login: true },
      });
    } catch (error) {
      if (matrixErrcode(error) !== "M_USER_IN_USE") throw error;
    }
  }

  /** The user's global profile; {} for a user the homeserver does not know. */
  async getProfile(userId: string): Promise<MatrixProfile> {
    let answer: Json;
    try {
      answer = await this.call("GET", `/_matrix/client/v3/profile/${enc(userId)}`);
    } catch (error) {
      if (isNotFound(error)) return {};
      throw error;
    }
    const profile: MatrixProfile = {};
    if (typeof answer["displayname"] === "string") profile.displayname = answer["displayname"];
    if (typeof answer["avatar_url"] === "string") profile.avatar_url = answer["avatar_url"];
    return profile;
  }

  /** Sets the display name of a user of the namespace, as that user. */
  async setDisplayName(userId: string, name: string): Promise<void> {
    await this.call("PUT", `/_matrix/client/v3/profile/${enc(userId)}/displayname`, {
      asUser: userId,
      json: { displayname: name },
    });
  }

  /** Sets the avatar (an mxc:// URI) of a user of the namespace, as that user. */
  async setAvatarUrl(userId: string, mxc: string): Promise<void> {
    await this.call("PUT", `/_matrix/client/v3/profile/${enc(userId)}/avatar_url`, {
      asUser: userId,
      json: { avatar_url: mxc },
    });
  }

  /** Joins a room by id or alias; returns the room id. */
  async joinRoom(roomIdOrAlias: string, asUser?: string): Promise<string> {
    const answer = await this.call("POST", `/_matrix/client/v3/join/${enc(roomIdOrAlias)}`, {
      asUser,
      json: {},
    });
    return this.stringField(answer, "room_id", "POST", "/_matrix/client/v3/join");
  }

  /** Leaves a room, or declines an invitation; a reason is shown to the room's members (and the inviter). */
  async leaveRoom(roomId: string, asUser?: string, reason?: string): Promise<void> {
    await this.call("POST", roomPath(roomId, "leave"), {
      asUser,
      json: reason === undefined ? {} : { reason },
    });
  }

  /**
   * Invites a user; one already invited or joined is fine. Synapse refuses to invite a member with
   * M_FORBIDDEN, which the membership then tells apart from a real refusal.
   */
  async invite(roomId: string, userId: string, asUser?: string): Promise<void> {
    try {
      await this.call("POST", roomPath(roomId, "invite"), { asUser, json: { user_id: userId } });
    } catch (error) {
      if (matrixErrcode(error) !== "M_FORBIDDEN") throw error;
      const member = await this.getState(roomId, "m.room.member", userId, asUser).catch(() => undefined);
      if (member?.["membership"] !== "join") throw error;
    }
  }

  /** Creates a room with the body of POST /createRoom; returns its id. */
  async createRoom(body: Record<string, unknown>, asUser?: string): Promise<string> {
    const path = "/_matrix/client/v3/createRoom";
    const answer = await this.call("POST", path, { asUser, json: body });
    return this.stringField(answer, "room_id", "POST", path);
  }

  /**
   * Sends a room event; returns its id. Synapse answers a repeated `txnId` with the first event's id
   * instead of sending again, but only for the same path (room, type, txnId) whoever the AS acts as, and
   * only until it restarts: a txnId must be unique per event across all senders, and is no guarantee
   * against a duplicate after a homeserver restart (MatrixBridge finds what it posted by latestEventsBy).
   */
  async sendEvent(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    txnId: string,
    asUser?: string,
  ): Promise<string> {
    const path = roomPath(roomId, "send", type, txnId);
    const answer = await this.call("PUT", path, { asUser, json: content });
    return this.stringField(answer, "event_id", "PUT", path);
  }

  /** Sets a state event; returns its id. */
  async sendState(
    roomId: string,
    type: string,
    stateKey: string,
    content: Record<string, unknown>,
    asUser?: string,
  ): Promise<string> {
    const path = roomPath(roomId, "state", type, stateKey);
    const answer = await this.call("PUT", path, { asUser, json: content });
    return this.stringField(answer, "event_id", "PUT", path);
  }

  /** A state event's content; undefined when the room has none of that type and key. */
  getState(
    roomId: string,
    type: string,
    stateKey: string,
    asUser?: string,
  ): Promise<Record<string, unknown> | undefined> {
    return this.readState(roomId, type, stateKey, { asUser });
  }

  /** A state event whole (sender included, which the content alone lacks); undefined when there is none. */
  getStateEvent(
    roomId: string,
    type: string,
    stateKey: string,
    asUser?: string,
  ): Promise<Record<string, unknown> | undefined> {
    return this.readState(roomId, type, stateKey, { asUser, query: { format: "event" } });
  }

  private async readState(
    roomId: string,
    type: string,
    stateKey: string,
    options: { asUser: string | undefined; query?: Record<string, string> },
  ): Promise<Record<string, unknown> | undefined> {
    try {
      return await this.call("GET", roomPath(roomId, "state", type, stateKey), options);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * The user ids of the room's members who are in it or invited to it, as `asUser` sees the room: who
   * reads what is said there, now or once they accept.
   */
  async presentMembers(roomId: string, asUser?: string): Promise<string[]> {
    const path = roomPath(roomId, "members");
    const answer = await this.call("GET", path, { asUser, limit: MEMBERS_LIMIT });
    const chunk = answer["chunk"];
    if (!Array.isArray(chunk)) throw this.malformed("GET", path, "chunk");
    const present: string[] = [];
    for (const event of chunk as unknown[]) {
      if (!isObject(event) || !isObject(event["content"])) continue;
      const { state_key: user } = event;
      const membership = event["content"]["membership"];
      if (typeof user === "string" && (membership === "join" || membership === "invite")) present.push(user);
    }
    return present;
  }

  /** The user ids of the room's joined members. */
  async joinedMembers(roomId: string, asUser?: string): Promise<string[]> {
    const path = roomPath(roomId, "joined_members");
    const answer = await this.call("GET", path, { asUser, limit: MEMBERS_LIMIT });
    const joined = answer["joined"];
    if (!isObject(joined)) throw this.malformed("GET", path, "joined");
    return Object.keys(joined);
  }

  /**
   * The latest events (at most `limit`, newest first) `sender` sent in the room, as `asUser` sees the room:
   * its timeline, state changes such as joins included. Entries that are not objects, or name another
   * sender, are left out.
   */
  async latestEventsBy(roomId: string, sender: string, limit: number, asUser?: string): Promise<Json[]> {
    const path = roomPath(roomId, "messages");
    const answer = await this.call("GET", path, {
      asUser,
      query: { dir: "b", limit: String(limit), filter: JSON.stringify({ senders: [sender] }) },
      limit: (limit + 1) * MAX_EVENT_BYTES,
    });
    const chunk = answer["chunk"];
    if (!Array.isArray(chunk)) throw this.malformed("GET", path, "chunk");
    return (chunk as unknown[])
      .slice(0, limit)
      .filter((event): event is Json => isObject(event) && event["sender"] === sender);
  }

  /**
   * The room's timeline before an event, newest first, page by page: at most `limit` events a page, and the
   * token of the page before (undefined at the room's start). Without `from`, the page just before `eventId`,
   * from its context. Synapse leaves out events of the same depth as `eventId` (sent at the same moment).
   */
  async eventsBefore(
    roomId: string,
    at: { eventId: string; from?: string },
    limit: number,
  ): Promise<{ events: Json[]; next?: string }> {
    if (at.from === undefined) {
      // The context's events before come first; Synapse gives half of `limit` before the event.
      const path = roomPath(roomId, "context", at.eventId);
      const context = await this.call("GET", path, {
        query: { limit: String(2 * limit) },
        limit: (2 * limit + 2) * MAX_EVENT_BYTES,
      });
      const before = context["events_before"];
      const start = context["start"];
      if (!Array.isArray(before)) throw this.malformed("GET", path, "events_before");
      const events = (before as unknown[]).slice(0, limit).filter(isObject);
      return typeof start === "string" && before.length > 0 ? { events, next: start } : { events };
    }
    const path = roomPath(roomId, "messages");
    const answer = await this.call("GET", path, {
      query: { dir: "b", from: at.from, limit: String(limit) },
      limit: (limit + 1) * MAX_EVENT_BYTES,
    });
    const chunk = answer["chunk"];
    if (!Array.isArray(chunk)) throw this.malformed("GET", path, "chunk");
    const end = answer["end"];
    const events = (chunk as unknown[]).slice(0, limit).filter(isObject);
    return typeof end === "string" && chunk.length > 0 ? { events, next: end } : { events };
  }

  /** Redacts an event; returns the redaction's event id. A repeated `txnId` is answered like sendEvent's. */
  async redact(
    roomId: string,
    eventId: string,
    txnId: string,
    asUser?: string,
    reason?: string,
  ): Promise<string> {
    const path = roomPath(roomId, "redact", eventId, txnId);
    const answer = await this.call("PUT", path, { asUser, json: reason === undefined ? {} : { reason } });
    return this.stringField(answer, "event_id", "PUT", path);
  }

  /** Uploads a file to the homeserver's media repository; returns its mxc:// URI. */
  async uploadMedia(data: Buffer, mediaType: string, fileName: string, asUser?: string): Promise<string> {
    const path = "/_matrix/media/v3/upload";
    const answer = await this.call("POST", path, {
      asUser,
      query: { filename: fileName },
      raw: { data, contentType: mediaType },
      timeoutMs: this.uploadTimeoutMs,
    });
    const uri = this.stringField(answer, "content_uri", "POST", path);
    try {
      parseMxc(uri);
    } catch {
      throw this.malformed("POST", path, "content_uri");
    }
    return uri;
  }

  /**
   * Where to GET the file of an mxc:// URI through the authenticated media API, and the headers to send.
   * With a `fileName`, the URL ends in it, so the homeserver names the download so. FG_NATIVE_INVALID for
   * a malformed URI.
   */
  mediaDownload(mxc: string, fileName?: string): { url: string; headers: Record<string, string> } {
    const { server, mediaId } = parseMxc(mxc);
    const name = fileName === undefined ? "" : `/${enc(fileName)}`;
    return {
      url: `${this.base}/_matrix/client/v1/media/download/${enc(server)}/${enc(mediaId)}${name}`,
      headers: { authorization: `Bearer ${this.#asToken}` },
    };
  }

  /**
   * Creates a device of a user of the namespace, or renames one that exists (MSC4190: the AS makes its
   * devices itself and never logs in for them); returns whether it was created.
   */
  async upsertDevice(deviceId: string, displayName: string, asUser?: string): Promise<boolean> {
    const path = `/_matrix/client/v3/devices/${enc(deviceId)}`;
    const answer = await this.callWithStatus("PUT", path, { asUser, json: { display_name: displayName } });
    return answer.status === 201;
  }

  /**
   * One request of the end-to-end encryption machinery (key upload, query and claim, to-device messages,
   * signature upload), as a device of a user of the namespace; the answer's JSON object. Answers of key
   * queries name every device of every user asked about, so they may be large.
   */
  async deviceRequest(
    method: "POST" | "PUT",
    path: DeviceRequestPath,
    body: Json,
    device: { userId: string; deviceId: string },
  ): Promise<Json> {
    return await this.call(method, path, {
      asUser: device.userId,
      asDevice: device.deviceId,
      json: body,
      limit: MEMBERS_LIMIT,
    });
  }

  /** Sends a room event as a device of a user of the namespace (an encrypted one names its device). */
  async sendEventAsDevice(
    roomId: string,
    type: string,
    content: Record<string, unknown>,
    txnId: string,
    device: { userId: string; deviceId: string },
  ): Promise<string> {
    const path = roomPath(roomId, "send", type, txnId);
    const answer = await this.call("PUT", path, {
      asUser: device.userId,
      asDevice: device.deviceId,
      json: content,
    });
    return this.stringField(answer, "event_id", "PUT", path);
  }

  private stringField(answer: Json, key: string, method: Method, path: string): string {
    const value = answer[key];
    if (typeof value !== "string" || value === "") throw this.malformed(method, path, key);
    return value;
  }

  private malformed(method: Method, path: string, key: string): PermanentError {
    return new PermanentError("FG_PEER_REFUSED", `Matrix ${method} ${path}: the answer has no valid ${key}`, {
      detail: { method, path },
    });
  }

  /** One request; the answer's JSON object when it is 2xx, else a typed error. */
  private async call(method: Method, path: string, options: CallOptions = {}): Promise<Json> {
    return (await this.callWithStatus(method, path, options)).answer;
  }

  /** call(), with the 2xx status (201 "created" is news to some callers). */
  private async callWithStatus(
    method: Method,
    path: string,
    options: CallOptions = {},
  ): Promise<{ status: number; answer: Json }> {
    const query = new URLSearchParams(options.query);
    if (options.asUser !== undefined) query.set("user_id", options.asUser);
    if (options.asDevice !== undefined) query.set("org.matrix.msc3202.device_id", options.asDevice);
    const search = query.size === 0 ? "" : `?${query.toString()}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.#asToken}` };
    let body: Buffer | string | null = null;
    if (options.raw !== undefined) {
      headers["content-type"] = options.raw.contentType;
      body = options.raw.data;
    } else if (options.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    const limit = options.limit ?? JSON_LIMIT;
    const signal = AbortSignal.timeout(timeoutMs);
    const started = Date.now();
    let status: number;
    let answer: Json | undefined;
    let bytes: Buffer | undefined;
    let retryAfter: string | string[] | undefined;
    try {
      const response = await request(`${this.base}${path}${search}`, {
        method,
        headers,
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
      });
      status = response.statusCode;
      retryAfter = response.headers["retry-after"];
      bytes = await readUpTo(response.body, limit, response.headers["content-length"]);
      answer = parseJson(bytes);
    } catch (cause) {
      const reason = networkFailureReason(cause, signal, `no answer within ${timeoutMs} ms`);
      this.log.debug({ method, path, reason }, "Matrix request failed");
      throw new TransientError("FG_PEER_UNAVAILABLE", `Matrix ${method} ${path}: ${reason}`, {
        cause,
        detail: { method, path },
      });
    }
    this.log.debug({ method, path, status, durationMs: Date.now() - started }, "Matrix request");
    if (status >= 200 && status < 300) {
      if (answer !== undefined) return { status, answer };
      const what = bytes === undefined ? `larger than ${limit} bytes` : "not a JSON object";
      throw new PermanentError("FG_PEER_REFUSED", `Matrix ${method} ${path}: the answer is ${what}`, {
        detail: { method, path, status },
      });
    }
    throw this.failure(method, path, status, answer, retryAfter);
  }

  private failure(
    method: Method,
    path: string,
    status: number,
    answer: Json | undefined,
    retryAfter: string | string[] | undefined,
  ): FedgateError {
    const errcode = typeof answer?.["errcode"] === "string" ? answer["errcode"] : undefined;
    const text =
      typeof answer?.["error"] === "string" ? answer["error"].slice(0, ERROR_TEXT_LIMIT) : undefined;
    const detail: Json = { status, method, path };
    if (errcode !== undefined) detail["errcode"] = errcode;
    const summary =
      `Matrix ${method} ${path}: HTTP ${status}` +
      (errcode === undefined ? (answer === undefined ? " (not a JSON answer)" : "") : ` ${errcode}`) +
      (text === undefined ? "" : `: ${text}`);
    if (status === 429 || errcode === "M_LIMIT_EXCEEDED") {
      const wait = retryAfterMs(answer, retryAfter);
      if (wait !== undefined) detail["retryAfterMs"] = wait;
      return new TransientError("FG_PEER_UNAVAILABLE", summary, { detail });
    }
    if (status >= 500 || RETRYABLE.has(status))
      return new TransientError("FG_PEER_UNAVAILABLE", summary, { detail });
    return new PermanentError("FG_PEER_REFUSED", summary, { detail });
  }
}
