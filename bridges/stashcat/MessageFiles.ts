/**
 * The files of officers' messages: described for the bus with a signed link that expires, and served at that
 * link by the bridge's own HTTP listener, decrypted from Stashcat on each request (see FileLinks).
 */
import { createHash } from "node:crypto";
import express from "express";
import type { Attachment } from "../../schemas/types.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { HttpListener } from "../../gateway/platform/http/HttpListener.js";
import type { Logger } from "../../gateway/platform/log.js";
import { normaliseMediaType } from "../kit/fetchAttachment.js";
import { mediaTypeOfBytes } from "../kit/mediaTypeOfBytes.js";
import type { ChatKeys } from "./ChatKeys.js";
import type { StashcatBridgeConfig } from "./config.types.js";
import { decryptBytes } from "./crypto.js";
import { createFileRouter, fileLink } from "./FileLinks.js";
import type { ChatRef } from "./messages.js";
import type { StashcatClient, StashcatFileKey } from "./StashcatClient.js";

export type MessageFilesConfig = Pick<StashcatBridgeConfig, "listen" | "publicUrl" | "attachments">;

export interface MessageFilesDeps {
  client: Pick<StashcatClient, "fileInfo" | "download">;
  chatKeys: Pick<ChatKeys, "of">;
  log: Logger;
}

/** A file's name, type and decrypted bytes. */
export interface OpenedFile {
  info: { name: string; mediaType: string };
  bytes: Buffer;
}

export class MessageFiles {
  private server: HttpListener | undefined;

  constructor(
    private readonly config: MessageFilesConfig,
    /** Signs the file links. */
    private readonly linkKey: Buffer,
    private readonly deps: MessageFilesDeps,
  ) {}

  /** The key of the file links, from the account's password. */
  static linkKeyOf(password: string): Buffer {
    // A key of its own for file links, so that a leaked link reveals nothing of the account's secrets.
    return createHash("sha256").update(`fedgate stashcat file links\0${password}`).digest();
  }

  async listen(): Promise<void> {
    const { log } = this.deps;
    const app = express();
    app.disable("x-powered-by");
    app.use(createFileRouter({ key: this.linkKey, log, open: (fileId) => this.open(fileId) }));
    this.server = await HttpListener.listen(app, {
      host: this.config.listen.host,
      port: this.config.listen.port,
      what: "Stashcat bridge's file server",
      log,
      headersTimeoutMs: 10_000,
      // A file is streamed from Stashcat as it is decrypted: a large one takes a while.
      requestTimeoutMs: 300_000,
    });
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  /** The base of the file links: as configured, else where the bridge listens (port 0 gives a free one). */
  private get publicUrl(): string {
    if (this.config.publicUrl !== undefined) return this.config.publicUrl.replace(/\/+$/, "");
    return this.server?.url ?? `http://${this.config.listen.host}:${String(this.config.listen.port)}`;
  }

  /**
   * A file of a message: decrypted once to learn its size, hash and type (what its bytes show, not what its
   * uploader declared), then served by a signed link that expires.
   */
  async describe(fileId: number, chat: ChatRef): Promise<Attachment> {
    const { info, bytes } = await this.open(fileId, chat);
    const lifetimeSeconds = this.config.attachments.linkLifetimeSeconds;
    return {
      name: info.name,
      mediaType: await mediaTypeOfBytes(normaliseMediaType(info.mediaType), bytes),
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      url: fileLink({ key: this.linkKey, baseUrl: this.publicUrl, lifetimeSeconds }, fileId, info.name),
    };
  }

  /** A file's name, type and decrypted bytes; too large, missing keys or undecryptable: refused. */
  private async open(fileId: number, chat?: ChatRef): Promise<OpenedFile> {
    const { client, chatKeys } = this.deps;
    const { maxBytes } = this.config.attachments;
    const info = await client.fileInfo(fileId);
    if (info.size > maxBytes)
      throw new PermanentError(
        "FG_ATTACHMENT_INVALID",
        `file ${String(fileId)} is larger than ${String(maxBytes)} bytes`,
      );
    const data = await client.download(fileId, maxBytes + 32);
    if (!info.encrypted) return { info, bytes: data };
    const access = fileAccess(info.keys, chat);
    if (access === undefined || info.iv === undefined)
      throw new PermanentError("FG_DECRYPTION_FAILED", `file ${String(fileId)} has no key for this account`);
    const chatKey = await chatKeys.of({ type: access.chatType as ChatRef["type"], id: access.chatId });
    const fileKey = decryptBytes(
      Buffer.from(access.key, "hex"),
      chatKey,
      Buffer.from(access.iv, "hex"),
      "file key",
    );
    return { info, bytes: decryptBytes(data, fileKey, Buffer.from(info.iv, "hex")) };
  }
}

/** The file's key sealed for the chat it was read in, else the first it has (a link names no chat). */
function fileAccess(keys: StashcatFileKey[], chat: ChatRef | undefined): StashcatFileKey | undefined {
  return (
    keys.find((k) => chat === undefined || (k.chatType === chat.type && k.chatId === chat.id)) ?? keys[0]
  );
}
