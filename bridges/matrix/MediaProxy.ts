/**
 * Matrix files for the other bridges. A normalised event's attachment URL must be plain http(s) that any
 * bridge can GET without a Matrix token, while the homeserver serves media only to authenticated users. So
 * the Matrix bridge hands out links to itself, signed with an HMAC of the file's server name and media id,
 * its name and an expiry (kit/fileLinks.ts), and streams the file from the homeserver's authenticated media
 * API, as the AS, to whoever presents a link it signed that has not expired. A link is a capability URL:
 * its signature is never logged. A link to an encrypted attachment also carries the file's key, sealed
 * (sealedFileKeys.ts): the proxy checks the ciphertext's hash, decrypts it and serves the plaintext.
 */
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import express, { type Request, type Response } from "express";
import { request, type Dispatcher } from "undici";
import type { Logger } from "../../gateway/platform/log.js";
import { checkSignedLink, contentDisposition, linkRefusal, signedLinkQuery } from "../kit/fileLinks.js";
import { readUpTo } from "../kit/readUpTo.js";
import { decryptAttachment, type AttachmentKeys } from "./crypto/encryptedAttachment.js";
import { parseMxc, type MatrixClient } from "./MatrixClient.js";
import { openFileKeys, sealFileKeys } from "./sealedFileKeys.js";

export interface MediaProxyOptions {
  client: MatrixClient;
  /** HMAC key of the links; a secret of the bridge's own. */
  key: Buffer | string;
  /** Public base URL the other bridges reach, e.g. http://bridge:9000. */
  baseUrl: string;
  /** How long a link lasts (attachments.linkLifetimeSeconds); see signedLinkQuery. */
  lifetimeSeconds: number;
  log: Logger;
  /** Larger files are refused with 413. */
  maxBytes: number;
}

/** The path prefix of the links; the router answers nothing else. */
export const mediaPathPrefix = "/_fedgate/media/v1";
/** Longest wait for the homeserver's response headers, and longest pause between two chunks. */
const UPSTREAM_TIMEOUT_MS = 30_000;

/** What a link's signature covers: the file, and the sealed key of an encrypted one. */
function linkSubject(server: string, mediaId: string, sealedKeys: string | undefined): string {
  return sealedKeys === undefined ? `${server}/${mediaId}` : `${server}/${mediaId}#${sealedKeys}`;
}

/**
 * The signed link, made at `now`, to the file of `mxc`, named `fileName`; with `keys`, to the plaintext of
 * the encrypted attachment at `mxc`. FG_NATIVE_INVALID for a malformed mxc URI.
 */
export function mediaLink(
  options: Pick<MediaProxyOptions, "key" | "baseUrl" | "lifetimeSeconds">,
  mxc: string,
  fileName: string,
  now?: number,
  keys?: AttachmentKeys,
): string {
  const { server, mediaId } = parseMxc(mxc);
  const sealed = keys === undefined ? undefined : sealFileKeys(options.key, mxc, keys);
  const subject = linkSubject(server, mediaId, sealed);
  const query = signedLinkQuery(options.key, subject, fileName, options.lifetimeSeconds, now);
  const base = options.baseUrl.replace(/\/+$/, "");
  const path = [server, mediaId, fileName].map(encodeURIComponent).join("/");
  return `${base}${mediaPathPrefix}/${path}?${query}${sealed === undefined ? "" : `&k=${sealed}`}`;
}

/** An undici or stream error's code, else its name: enough to tell what happened, never a URL. */
function failureReason(cause: unknown): string {
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === "string") return code;
  return cause instanceof Error ? cause.name : "unknown error";
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Counts the bytes passing through and fails once they exceed the limit. */
class Limit extends Transform {
  private count = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.count += chunk.length;
    if (this.count > this.maxBytes)
      callback(Object.assign(new Error(`more than ${this.maxBytes} bytes`), { code: "FG_TOO_MANY_BYTES" }));
    else callback(null, chunk);
  }
}

/**
 * GET /_fedgate/media/v1/:server/:mediaId/:name?sig=… as an express router; any other path goes on to
 * the next handler. Needs no token but the link's signature.
 */
export function createMediaRouter(options: Omit<MediaProxyOptions, "lifetimeSeconds">): express.Router {
  const { client, key, log, maxBytes } = options;
  const router = express.Router();

  const refuse = (res: Response, status: number, error: string): void => {
    res.status(status).set("cache-control", "no-store").json({ error });
  };

  const download = async (
    req: Request<{ server: string; mediaId: string; name: string }>,
    res: Response,
  ): Promise<void> => {
    const { server, mediaId, name } = req.params;
    const context = {
      remoteAddress: req.socket.remoteAddress,
      method: req.method,
      path: req.baseUrl + req.path,
    };
    const sealed = req.query["k"];
    const check =
      sealed === undefined || typeof sealed === "string"
        ? checkSignedLink(key, linkSubject(server, mediaId, sealed), name, req.query)
        : "invalid";
    const keys =
      check === "valid" && typeof sealed === "string"
        ? openFileKeys(key, `mxc://${server}/${mediaId}`, sealed)
        : undefined;
    if (check !== "valid" || (typeof sealed === "string" && keys === undefined)) {
      const { status, error } = linkRefusal(check === "valid" ? "invalid" : check);
      log.warn({ code: "FG_AUTH_INVALID", ...context, status }, `media link refused: ${error}`);
      refuse(res, status, error);
      return;
    }
    let target: { url: string; headers: Record<string, string> };
    try {
      target = client.mediaDownload(`mxc://${server}/${mediaId}`);
    } catch {
      refuse(res, 404, "no such file");
      return;
    }

    let upstream: Dispatcher.ResponseData;
    try {
      // Timeouts for the headers and for each pause, none for the whole: a large file may take its time.
      upstream = await request(target.url, {
        method: "GET",
        headers: target.headers,
        headersTimeout: UPSTREAM_TIMEOUT_MS,
        bodyTimeout: UPSTREAM_TIMEOUT_MS,
      });
    } catch (cause) {
      log.warn(
        { code: "FG_PEER_UNAVAILABLE", ...context, reason: failureReason(cause) },
        "media proxy cannot reach the homeserver",
      );
      refuse(res, 502, "the homeserver cannot be reached");
      return;
    }
    const body = upstream.body;
    // undici's body emits an error when destroyed unread after it arrived whole (a refusal here destroys
    // it that way); unheard, that error would end the process. pipeline and readers still see theirs.
    body.on("error", () => undefined);
    const status = upstream.statusCode;
    if (status !== 200) {
      body.destroy();
      if (status === 404) {
        refuse(res, 404, "no such file");
        return;
      }
      log.warn({ code: "FG_PEER_REFUSED", ...context, status }, "the homeserver refuses the media download");
      refuse(res, 502, "the homeserver refuses the download");
      return;
    }

    const tooLarge = (): void => {
      log.warn({ code: "FG_ATTACHMENT_INVALID", ...context, maxBytes }, "media file larger than the limit");
      refuse(res, 413, `the file is larger than ${maxBytes} bytes`);
    };
    const brokeOff = (cause: unknown): void => {
      // A client that went away is no fault of the homeserver's.
      if (req.destroyed || res.destroyed)
        log.debug({ ...context, reason: failureReason(cause) }, "media download abandoned by the client");
      else
        log.warn(
          { code: "FG_PEER_UNAVAILABLE", ...context, reason: failureReason(cause) },
          "media download broke off",
        );
    };
    const declared = single(upstream.headers["content-length"]);
    const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
    if (length !== undefined && length > maxBytes) {
      body.destroy();
      tooLarge();
      return;
    }
    // Node's own setHeader: express's would add a charset to text types, which would misstate the file.
    const sendHeaders = (
      contentLength: number,
      contentType = single(upstream.headers["content-type"]) ?? "application/octet-stream",
    ): void => {
      res.statusCode = 200;
      res.setHeader("content-type", contentType);
      res.setHeader("content-length", String(contentLength));
      res.setHeader("content-disposition", contentDisposition(name));
      res.setHeader("x-content-type-options", "nosniff");
      res.setHeader("content-security-policy", "sandbox; default-src 'none'");
      res.setHeader("cache-control", "private, no-cache");
    };

    if (keys !== undefined) {
      // The hash covers the whole ciphertext: nothing is served before all of it is read and checked.
      let ciphertext: Buffer | undefined;
      try {
        ciphertext = await readUpTo(body, maxBytes);
      } catch (cause) {
        brokeOff(cause);
        if (!res.destroyed) refuse(res, 502, "the homeserver's transfer broke off");
        return;
      }
      if (ciphertext === undefined) {
        tooLarge();
        return;
      }
      let plaintext: Buffer;
      try {
        plaintext = decryptAttachment(ciphertext, keys);
      } catch (cause) {
        log.warn(
          { code: "FG_ATTACHMENT_INVALID", err: cause, ...context },
          "encrypted media file does not match its key",
        );
        refuse(res, 502, "the file does not match the key it was sent with");
        return;
      }
      // The uploader's type is the ciphertext's, not the file's: what the bytes are is the event's to say.
      sendHeaders(plaintext.length, "application/octet-stream");
      res.end(req.method === "HEAD" ? undefined : plaintext);
      return;
    }

    if (length === undefined) {
      // No length announced: the size is known only once read, and a 413 must come before any byte. The
      // limit bounds what is held.
      let bytes: Buffer | undefined;
      try {
        bytes = await readUpTo(body, maxBytes);
      } catch (cause) {
        brokeOff(cause);
        if (!res.destroyed) refuse(res, 502, "the homeserver's transfer broke off");
        return;
      }
      if (bytes === undefined) {
        tooLarge();
        return;
      }
      sendHeaders(bytes.length);
      res.end(req.method === "HEAD" ? undefined : bytes);
      return;
    }

    sendHeaders(length);
    if (req.method === "HEAD") {
      body.destroy();
      res.end();
      return;
    }
    try {
      // pipeline destroys every stream on any failure: a broken upstream, a client gone, too many bytes.
      await pipeline(body, new Limit(length), res);
    } catch (cause) {
      // The headers are out: all that is left is to cut the response short, which the client notices.
      if (!res.destroyed) res.destroy();
      brokeOff(cause);
    }
  };

  router.get(`${mediaPathPrefix}/:server/:mediaId/:name`, (req, res, next) => {
    download(req, res).catch(next);
  });
  return router;
}
