/**
 * Acting as a Stashcat user against the test server, as the official clients do: form-encoded POSTs with
 * the session in the body, the private key unlocked with the encryption password, chat keys unwrapped,
 * text encrypted before it is sent, and the push channel joined with `userid`.
 */
import { randomBytes, type KeyObject } from "node:crypto";
import { FormData, request } from "undici";
import { io, type Socket } from "socket.io-client";
import { decryptText, encryptText, unlockPrivateKey, unwrapChatKey } from "../../bridges/stashcat/crypto.js";
import type { SeedUser, StashcatServer } from "../harness/servers/stashcat/StashcatServer.js";

export type Json = Record<string, unknown>;

export interface Envelope {
  status: { value: string; short_message: unknown; message: unknown };
  payload: Json;
  signature: unknown;
}

export interface Answer {
  statusCode: number;
  contentType: string;
  body: Buffer;
}

/** One form-encoded POST; the raw answer. */
export async function postForm(
  apiUrl: string,
  endpoint: string,
  fields: Record<string, string>,
): Promise<Answer> {
  const response = await request(`${apiUrl}${endpoint}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  const type = response.headers["content-type"];
  return { statusCode: response.statusCode, contentType: typeof type === "string" ? type : "", body };
}

/** One multipart POST, with a file part if given; the raw answer. */
export async function postMultipart(
  apiUrl: string,
  endpoint: string,
  fields: Record<string, string>,
  file?: { field: string; bytes: Buffer; filename?: string },
): Promise<Answer> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  if (file !== undefined)
    form.append(
      file.field,
      new Blob([file.bytes], { type: "application/octet-stream" }),
      file.filename ?? "[object Object]",
    );
  const response = await request(`${apiUrl}${endpoint}`, { method: "POST", body: form });
  const body = Buffer.from(await response.body.arrayBuffer());
  const type = response.headers["content-type"];
  return { statusCode: response.statusCode, contentType: typeof type === "string" ? type : "", body };
}

export function envelopeOf(answer: Answer): Envelope {
  return JSON.parse(answer.body.toString("utf8")) as Envelope;
}

/** The payload of an OK answer; throws with the status otherwise. */
export function payloadOf(answer: Answer, what: string): Json {
  const envelope = envelopeOf(answer);
  if (envelope.status.value !== "OK") throw new Error(`${what}: ${JSON.stringify(envelope.status)}`);
  return envelope.payload;
}

export class StashcatTestUser {
  private readonly chatKeys = new Map<string, Buffer>();

  private constructor(
    readonly server: StashcatServer,
    readonly seedUser: SeedUser,
    readonly deviceId: string,
    readonly clientKey: string,
    readonly userinfo: Json,
  ) {}

  /** Logs in as the seed user on a device of its own. */
  static async login(server: StashcatServer, user: SeedUser, deviceId = randomBytes(16).toString("hex")) {
    const answer = await postForm(server.apiUrl, "auth/login", {
      email: user.email,
      password: user.password,
      device_id: deviceId,
      app_name: "fedgate-test-browser-1.0",
      encrypted: "true",
      callable: "false",
      key_transfer_support: "false",
    });
    const payload = payloadOf(answer, "auth/login");
    return new StashcatTestUser(
      server,
      user,
      deviceId,
      payload["client_key"] as string,
      payload["userinfo"] as Json,
    );
  }

  get id(): number {
    return this.seedUser.id;
  }

  /** The fields that authenticate every call. */
  auth(): Record<string, string> {
    return { client_key: this.clientKey, device_id: this.deviceId };
  }

  /** A call with the session added; the whole envelope, whatever its status. */
  async post(endpoint: string, fields: Record<string, string> = {}): Promise<Envelope> {
    return envelopeOf(await postForm(this.server.apiUrl, endpoint, { ...this.auth(), ...fields }));
  }

  /** A call with the session added; its payload, or an error unless OK. */
  async call(endpoint: string, fields: Record<string, string> = {}): Promise<Json> {
    return payloadOf(await postForm(this.server.apiUrl, endpoint, { ...this.auth(), ...fields }), endpoint);
  }

  private privateKeyCache: KeyObject | undefined;

  /** The private key, fetched and unlocked with the encryption password as a client does. */
  async privateKey(): Promise<KeyObject> {
    if (this.privateKeyCache === undefined) {
      const fields: Record<string, string> = this.seedUser.keyForms.includes("jwk")
        ? { format: "jwk", type: "encryption" }
        : {};
      const keys = (await this.call("security/get_private_key", fields))["keys"] as Json;
      this.privateKeyCache = unlockPrivateKey(
        keys["private_key"] as string,
        this.seedUser.encryptionPassword,
      );
    }
    return this.privateKeyCache;
  }

  /** The chat's AES key, from the member's wrapped key. */
  async chatKey(type: "channel" | "conversation", id: number): Promise<Buffer> {
    const cached = this.chatKeys.get(`${type}:${String(id)}`);
    if (cached !== undefined) return cached;
    const wrapped =
      type === "channel"
        ? (
            (await this.call("channels/info", { channel_id: String(id), without_members: "true" }))[
              "channels"
            ] as Json
          )["key"]
        : (
            (await this.call("message/conversation", { conversation_id: String(id) }))["conversation"] as Json
          )["key"];
    const key = unwrapChatKey(wrapped as string, await this.privateKey());
    this.chatKeys.set(`${type}:${String(id)}`, key);
    return key;
  }

  /** Sends text encrypted with the chat key; the stored message as the server answers it. */
  async send(
    type: "channel" | "conversation",
    id: number,
    text: string,
    extra: Record<string, string> = {},
  ): Promise<Json> {
    const encrypted = encryptText(text, await this.chatKey(type, id));
    const payload = await this.call("message/send", {
      target: type,
      [`${type}_id`]: String(id),
      text: encrypted.text,
      iv: encrypted.iv,
      encrypted: "true",
      verification: "",
      files: "[]",
      url: "[]",
      type: "text",
      is_forwarded: "false",
      ...extra,
    });
    return payload["message"] as Json;
  }

  /** A page of the chat's entries as the server lists them. */
  async content(
    type: "channel" | "conversation",
    id: number,
    fields: Record<string, string> = {},
  ): Promise<Json[]> {
    const payload = await this.call("message/content", {
      source: type,
      [`${type}_id`]: String(id),
      limit: "50",
      offset: "0",
      ...fields,
    });
    return payload["messages"] as Json[];
  }

  /** The plaintext of a message of that chat. */
  async decrypt(type: "channel" | "conversation", id: number, message: Json): Promise<string> {
    if (message["encrypted"] !== true) return message["text"] as string;
    return decryptText(message["text"] as string, message["iv"] as string, await this.chatKey(type, id));
  }

  /** A push connection, logged in; resolves once the server confirms it with new_device_connected. */
  async connectPush(): Promise<Socket> {
    const socket = io(this.server.pushUrl, {
      path: "/socket.io",
      transports: ["websocket"],
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
    });
    const confirmed = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no new_device_connected")), 10_000);
      socket.once("new_device_connected", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    socket.on("connect", () => {
      socket.emit("userid", {
        hidden_id: this.userinfo["socket_id"],
        device_id: this.deviceId,
        client_key: this.clientKey,
      });
    });
    try {
      await confirmed;
    } catch (error) {
      socket.disconnect();
      throw error;
    }
    return socket;
  }
}
