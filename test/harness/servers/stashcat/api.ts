/**
 * The REST side of the server: every call a POST to `area/action` (with or without a leading slash), its
 * fields form-encoded or, for uploads and downloads, multipart; the session's client_key and device_id in
 * the body; the answer an envelope, HTTP 200 even for a refusal. A file download is the one answer that is
 * raw bytes. Logs name the endpoint and the refusal, never a field's value.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import multer from "multer";
import type { Logger } from "../../../../gateway/platform/log.js";
import { Form, Refusal, ok, refused, type Envelope, type RefusalCode } from "./envelope.js";
import type { Push } from "./push.js";
import type { Session, User } from "./store.js";
import type { ViewContext } from "./views.js";

export interface ApiContext extends ViewContext {
  push: Push;
  maxUploadBytes: number;
  log: Logger;
  /** Milliseconds an endpoint's answer is held back after it was made, as on a slow network (tests). */
  delays: Map<string, number>;
  /** Endpoints refused whatever is asked, with this short_message (tests). */
  refusals: Map<string, RefusalCode>;
}

/** A file part of a multipart body. */
export interface Part {
  field: string;
  bytes: Buffer;
  mime: string;
}

export interface ApiRequest {
  form: Form;
  parts: readonly Part[];
  /** A query-string parameter (only `file/download` takes one). */
  query(name: string): string | undefined;
}

export interface AuthedRequest extends ApiRequest {
  session: Session;
  user: User;
}

/** An answer of raw bytes rather than an envelope. */
export class RawFile {
  constructor(
    readonly bytes: Buffer,
    readonly mime: string,
    readonly name: string,
  ) {}
}

export type Endpoint =
  | { auth: false; handle: (request: ApiRequest, ctx: ApiContext) => unknown }
  | { auth: true; handle: (request: AuthedRequest, ctx: ApiContext) => unknown };

/** An endpoint anyone may call. */
export function open(handle: (request: ApiRequest, ctx: ApiContext) => unknown): Endpoint {
  return { auth: false, handle };
}

/** An endpoint for a logged-in session. */
export function authed(handle: (request: AuthedRequest, ctx: ApiContext) => unknown): Endpoint {
  return { auth: true, handle };
}

/** Largest form body; message text is hex, twice its bytes. */
const FORM_LIMIT = 8 * 1024 * 1024;

function endpointName(req: Request): string {
  return req.path.replace(/^\/+|\/+$/g, "").toLowerCase();
}

function send(res: Response, envelope: Envelope): void {
  res.status(200).set("cache-control", "no-store").json(envelope);
}

/** Content-Disposition with an ASCII fallback and the exact name (RFC 6266). */
function disposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

export function createApi(ctx: ApiContext, endpoints: Readonly<Record<string, Endpoint>>): express.Express {
  const { store, log } = ctx;
  // Names match without regard to case; `message/createEncryptedConversation` has capitals.
  const table = new Map(Object.entries(endpoints).map(([name, endpoint]) => [name.toLowerCase(), endpoint]));
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.use(express.urlencoded({ extended: false, limit: FORM_LIMIT }));
  app.use(
    multer({
      storage: multer.memoryStorage(),
      limits: { fileSize: ctx.maxUploadBytes, files: 1, fields: 200, fieldSize: FORM_LIMIT },
    }).any(),
  );

  const call = async (req: Request, res: Response): Promise<void> => {
    const name = endpointName(req);
    const refuse = (refusal: Refusal): void => {
      log.debug({ endpoint: name, refusal: refusal.shortMessage }, "Stashcat request refused");
      send(res, refused(refusal));
    };
    if (req.method !== "POST") {
      refuse(new Refusal("method_not_allowed", `${req.method} is not supported; every call is a POST`));
      return;
    }
    const endpoint = table.get(name);
    if (endpoint === undefined) {
      refuse(new Refusal("unknown_endpoint", `there is no endpoint ${name === "" ? "/" : name}`));
      return;
    }
    const refusal = ctx.refusals.get(name);
    if (refusal !== undefined) {
      refuse(new Refusal(refusal, `${name} is refused for now`));
      return;
    }
    const form = Form.of(req.body);
    const files = Array.isArray(req.files) ? req.files : [];
    const request: ApiRequest = {
      form,
      parts: files.map((f) => ({ field: f.fieldname, bytes: f.buffer, mime: f.mimetype })),
      query: (param) => {
        const value: unknown = req.query[param];
        return typeof value === "string" ? value : undefined;
      },
    };
    let answer: unknown;
    try {
      if (endpoint.auth) {
        form.require("client_key", "device_id");
        const session = store.session(form.string("client_key") ?? "", form.string("device_id") ?? "");
        const user = session === undefined ? undefined : store.findUser(session.userId);
        if (session === undefined || user === undefined)
          throw new Refusal("auth_invalid", "client_key invalid or expired; log in again");
        answer = await endpoint.handle({ ...request, session, user }, ctx);
      } else {
        answer = await endpoint.handle(request, ctx);
      }
    } catch (error) {
      if (error instanceof Refusal) {
        refuse(error);
        return;
      }
      log.error({ err: error, endpoint: name, code: "FG_INTERNAL" }, "Stashcat test server endpoint failed");
      send(res, refused(new Refusal("internal_error", "the server failed to handle the request")));
      return;
    }
    // The answer is what the server saw on arrival; only its delivery is late.
    const delay = ctx.delays.get(name) ?? 0;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    if (answer instanceof RawFile) {
      res.status(200);
      res.setHeader("content-type", answer.mime === "" ? "application/octet-stream" : answer.mime);
      res.setHeader("content-length", String(answer.bytes.length));
      res.setHeader("content-disposition", disposition(answer.name));
      res.setHeader("x-content-type-options", "nosniff");
      res.end(answer.bytes);
      return;
    }
    send(res, ok(answer ?? {}));
  };

  app.use((req, res, next) => {
    call(req, res).catch(next);
  });

  // Bodies that cannot be read: still an envelope, as every client expects one.
  app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const code = error instanceof multer.MulterError ? error.code : undefined;
    const type =
      typeof error === "object" && error !== null && "type" in error ? String(error.type) : undefined;
    const refusal =
      code === "LIMIT_FILE_SIZE"
        ? new Refusal("file_too_large", `a file may have at most ${String(ctx.maxUploadBytes)} bytes`)
        : type === "entity.too.large"
          ? new Refusal("invalid_values", `the request body is larger than ${String(FORM_LIMIT)} bytes`)
          : new Refusal("invalid_values", "the request body could not be read");
    log.debug(
      { endpoint: endpointName(req), refusal: refusal.shortMessage, reason: code ?? type },
      "Stashcat request body refused",
    );
    send(res, refused(refusal));
  });
  return app;
}
