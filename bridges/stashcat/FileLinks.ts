/**
 * GET /_fedgate/stashcat/v1/files/:fileId/:name?exp=…&sig=…: the decrypted file of a Stashcat message, for
 * the other bridges. Stashcat keeps files encrypted for the chat's members; the link is signed by the bridge
 * (the file, its name and an expiry: kit/fileLinks.ts), which decrypts on each request, so no decrypted copy
 * is ever stored. The file is served as the type its bytes show, as the bridge described it.
 */
import express, { type Request, type Response } from "express";
import { FedgateError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import { checkSignedLink, contentDisposition, linkRefusal, signedLinkQuery } from "../kit/fileLinks.js";
import { normaliseMediaType } from "../kit/fetchAttachment.js";
import { mediaTypeOfBytes } from "../kit/mediaTypeOfBytes.js";

export const filePathPrefix = "/_fedgate/stashcat/v1/files";

export interface FileRouterOptions {
  /** HMAC key of the links. */
  key: Buffer;
  log: Logger;
  /** The file's name, type and decrypted bytes. */
  open(fileId: number): Promise<{ info: { name: string; mediaType: string }; bytes: Buffer }>;
}

/** What a link to a Stashcat file signs as the file. */
function subjectOf(fileId: number | string): string {
  return `stashcat/${String(fileId)}`;
}

/**
 * The link, made at `now`, that the bridge at `baseUrl` serves the file `fileId` at, downloaded as `name`;
 * it lasts `lifetimeSeconds` at most (see signedLinkQuery).
 */
export function fileLink(
  options: { key: Buffer; baseUrl: string; lifetimeSeconds: number },
  fileId: number,
  name: string,
  now?: number,
): string {
  const query = signedLinkQuery(options.key, subjectOf(fileId), name, options.lifetimeSeconds, now);
  return `${options.baseUrl}${filePathPrefix}/${String(fileId)}/${encodeURIComponent(name)}?${query}`;
}

export function createFileRouter(options: FileRouterOptions): express.Router {
  const router = express.Router();
  router.get(
    `${filePathPrefix}/:fileId/:name`,
    async (req: Request<{ fileId: string; name: string }>, res: Response) => {
      const { fileId, name } = req.params;
      const check = /^[1-9][0-9]{0,15}$/.test(fileId)
        ? checkSignedLink(options.key, subjectOf(fileId), name, req.query)
        : "invalid";
      if (check !== "valid") {
        const { status, error } = linkRefusal(check);
        options.log.warn(
          { code: "FG_AUTH_INVALID", fileId, status, remoteAddress: req.socket.remoteAddress },
          `Stashcat file link refused: ${error}`,
        );
        res.status(status).json({ error });
        return;
      }
      try {
        const { info, bytes } = await options.open(Number(fileId));
        res.status(200);
        res.setHeader("content-type", await mediaTypeOfBytes(normaliseMediaType(info.mediaType), bytes));
        res.setHeader("content-length", String(bytes.length));
        res.setHeader("content-disposition", contentDisposition(info.name));
        res.setHeader("x-content-type-options", "nosniff");
        res.setHeader("cache-control", "private, no-cache");
        res.end(bytes);
      } catch (error) {
        const transient = error instanceof FedgateError && error.transient;
        options.log.warn({ err: error, fileId }, "Stashcat file could not be served");
        res
          .status(transient ? 502 : 404)
          .json({ error: transient ? "Stashcat is not reachable now" : "no such file" });
      }
    },
  );
  return router;
}
