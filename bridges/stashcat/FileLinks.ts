/**
 * GET /_fedgate/stashcat/v1/files/:fileId/:name?sig=…: the decrypted file of a Stashcat message, for the
 * other bridges. Stashcat keeps files encrypted for the chat's members; the link is signed by the bridge,
 * which decrypts on each request, so no decrypted copy is ever stored.
 */
import express, { type Request, type Response } from "express";
import { FedgateError } from "../../gateway/errors.js";
import type { Logger } from "../../gateway/log.js";
import { contentDisposition, validLinkSignature } from "../kit/fileLinks.js";

export const filePathPrefix = "/_fedgate/stashcat/v1/files";

export interface FileRouterOptions {
  /** HMAC key of the links. */
  key: Buffer;
  log: Logger;
  /** The file's name, type and decrypted bytes. */
  open(fileId: number): Promise<{ info: { name: string; mediaType: string }; bytes: Buffer }>;
}

export function createFileRouter(options: FileRouterOptions): express.Router {
  const router = express.Router();
  router.get(
    `${filePathPrefix}/:fileId/:name`,
    async (req: Request<{ fileId: string; name: string }>, res: Response) => {
      const { fileId } = req.params;
      if (
        !/^[1-9][0-9]{0,15}$/.test(fileId) ||
        !validLinkSignature(options.key, `stashcat/${fileId}`, req.query["sig"])
      ) {
        options.log.warn(
          { code: "FG_AUTH_INVALID", fileId, remoteAddress: req.socket.remoteAddress },
          "Stashcat file link with a missing or wrong signature",
        );
        res.status(403).json({ error: "not a link this bridge handed out" });
        return;
      }
      try {
        const { info, bytes } = await options.open(Number(fileId));
        res.status(200);
        res.setHeader("content-type", info.mediaType);
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
