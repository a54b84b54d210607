/**
 * The Matrix Application Service API (v1) the homeserver calls: transactions of events, user and alias
 * queries, and ping.
 *
 * Why our own ~200 lines on express rather than a library: matrix-appservice-bridge cannot be imported
 * here (its end-to-end encryption dependency downloads a native binary at install time, which this
 * machine and CI cannot reach), and both it and the lower-level `matrix-appservice` package (3.0.0) answer
 * a transaction 200 as soon as its events are emitted to listeners, remembering only the last transaction
 * id in memory. That acknowledges events before they are on the bus: a crash in between loses them, and a
 * restart forgets which transactions were done. The fedgate contract is the opposite (answer only once
 * stored), so this endpoint awaits the bridge's handler, then records the transaction id in JetStream KV,
 * and only then answers 200. A failure answers 500 and the homeserver retries the same transaction.
 * `matrix-appservice` also needs express 4; we run express 5.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "../../gateway/platform/log.js";
import { HttpListener } from "../../gateway/platform/http/HttpListener.js";
import { counter, histogram } from "../../gateway/platform/telemetry.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import {
  cryptoFields,
  hasCryptoFields,
  readCryptoTransaction,
  type CryptoTransaction,
} from "./cryptoTransaction.js";
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";

/** The bucket of transaction ids already handled. */
export const txnBucket = "fedgate_matrix_txns";
/**
 * How long a handled transaction id is remembered. The homeserver retries one transaction until it
 * succeeds and only then sends the next, so a repeat comes minutes after the first at most.
 */
export const txnTtlMs = 24 * 60 * 60 * 1000;
/** Largest transaction body accepted; Synapse batches at most 100 events (of at most 64 KiB) and some EDUs. */
export const transactionBodyLimit = 10 * 1024 * 1024;

export interface AppServiceEndpointOptions {
  /** The registration's hs_token: the homeserver proves itself with it on every request. */
  hsToken: string;
  /** Transaction ids already handled; see openTxnStore. */
  txns: KeyValueStore;
  /**
   * The bridge's work for one transaction: resolves once its events are stored on the bus. Gets every
   * event as sent, malformed ones included. Throwing makes the homeserver retry the whole transaction.
   */
  onEvents: (events: readonly unknown[], txnId: string) => Promise<void>;
  /**
   * What end-to-end encryption needs of a transaction (to-device messages, device list changes, key counts),
   * checked and bounded; called before onEvents, so that room keys are in before the events they open.
   * Without it those fields are ignored.
   */
  onCrypto?: (transaction: CryptoTransaction, txnId: string) => Promise<void>;
  /** Whether a user in the AS's namespace exists (or was just created); default: none does. */
  userExists?: (userId: string) => Promise<boolean>;
  /** Whether an alias in the AS's namespace exists (or was just created); default: none does. */
  aliasExists?: (alias: string) => Promise<boolean>;
  log: Logger;
}

/** Opens the transaction id bucket, whose entries expire after txnTtlMs. */
export function openTxnStore(bus: Bus): Promise<KeyValueStore> {
  return bus.keyValue(txnBucket, { ttlMs: txnTtlMs });
}

type MatrixErrcode =
  | "M_UNAUTHORIZED"
  | "M_FORBIDDEN"
  | "M_NOT_JSON"
  | "M_BAD_JSON"
  | "M_TOO_LARGE"
  | "M_NOT_FOUND"
  | "M_UNRECOGNIZED"
  | "M_UNKNOWN";

function sendError(res: Response, status: number, errcode: MatrixErrcode, error: string): void {
  res.status(status).json({ errcode, error });
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Path without the query string, which may carry the token. */
function requestPath(req: Request): string {
  return req.baseUrl + req.path;
}

function requestContext(req: Request): Record<string, unknown> {
  return { remoteAddress: req.socket.remoteAddress, method: req.method, path: requestPath(req) };
}

/** The token from `Authorization: Bearer`, else from the legacy `?access_token=`. */
function presentedToken(req: Request): string | undefined {
  const header = req.get("authorization")?.trim();
  if (header !== undefined && header !== "") {
    const match = /^bearer\s+(.+)$/i.exec(header);
    return match?.[1]?.trim() ?? "";
  }
  const query: unknown = req.query["access_token"];
  return typeof query === "string" ? query : undefined;
}

/** Refuses any request without the hs_token; compares digests so neither the token nor its length leaks. */
function hsTokenAuth(hsToken: string, log: Logger) {
  const expected = sha256(hsToken);
  return (req: Request, res: Response, next: NextFunction): void => {
    const token = presentedToken(req);
    if (token === undefined) {
      log.warn({ code: "FG_AUTH_REQUIRED", ...requestContext(req) }, "Matrix AS request without a token");
      sendError(res, 401, "M_UNAUTHORIZED", "no hs_token given");
      return;
    }
    if (!timingSafeEqual(sha256(token), expected)) {
      log.warn({ code: "FG_AUTH_INVALID", ...requestContext(req) }, "Matrix AS request with a wrong token");
      sendError(res, 403, "M_FORBIDDEN", "the hs_token is not valid");
      return;
    }
    next();
  };
}

/**
 * The KV key of a transaction id. A digest of the hs_token scopes it to this registration: a new one
 * (whose homeserver counts transactions from 1 again) must not find the old registration's ids.
 */
function txnKeyPrefix(hsToken: string): string {
  return `txn.${sha256(`fedgate matrix txn\0${hsToken}`).subarray(0, 12).toString("base64url")}`;
}

/** keyToken bounds the key, however long the homeserver's id. */
function txnKey(prefix: string, txnId: string): string {
  return `${prefix}.${keyToken(txnId)}`;
}

/**
 * What identifies a transaction's content: its events' ids. A retry carries the same events (re-serialised,
 * so `unsigned.age` and the like differ); a homeserver that numbers its transactions from 1 again after a
 * restart (Synapse on SQLite does) sends other events under an id already seen, and those must not be
 * taken for a repeat and dropped.
 */
function eventsDigest(events: readonly unknown[], body: Record<string, unknown>): string {
  const ids = events.map((event) => {
    const id = (event as { event_id?: unknown } | null)?.event_id;
    return typeof id === "string" ? id : JSON.stringify(event);
  });
  // A transaction of to-device messages or key counts alone has no events: those fields tell it apart.
  if (hasCryptoFields(body)) ids.push(JSON.stringify(cryptoFields(body)));
  return sha256(ids.join("\0")).toString("base64url");
}

/** The events of a transaction body, or why it is refused. */
function parseTransaction(
  body: unknown,
):
  | { events: unknown[]; body: Record<string, unknown> }
  | { errcode: "M_NOT_JSON" | "M_BAD_JSON"; error: string } {
  if (!Buffer.isBuffer(body) || body.length === 0)
    return { errcode: "M_NOT_JSON", error: "the transaction has no body" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    return { errcode: "M_NOT_JSON", error: "the transaction is not JSON" };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    return { errcode: "M_BAD_JSON", error: "the transaction is not a JSON object" };
  const events = (parsed as Record<string, unknown>)["events"];
  if (!Array.isArray(events)) return { errcode: "M_BAD_JSON", error: "the transaction has no events array" };
  return { events: events as unknown[], body: parsed as Record<string, unknown> };
}

/**
 * Runs one task per key at a time, in arrival order: a homeserver's retry that races the first attempt
 * of the same transaction waits for it, then finds it recorded.
 */
class PerKeyQueue {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

const requests = counter("fedgate.appservice.requests", {
  description:
    "Requests to the Matrix AS endpoint, by route (transaction, user_query, alias_query, ping, other) and HTTP status",
});
const requestDuration = histogram("fedgate.appservice.request.duration", {
  description: "How long the Matrix AS endpoint took to answer, by route",
  unit: "ms",
  advice: {
    explicitBucketBoundaries: [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 90_000],
  },
});

/** Which AS endpoint a path is, as a metric label: a fixed few, whatever paths a client sends. */
function routeClass(path: string): string {
  const match = /^(?:\/_matrix\/app\/v1)?\/(transactions|users|rooms)\/[^/]+$/.exec(path);
  if (match !== null)
    return match[1] === "transactions" ? "transaction" : match[1] === "users" ? "user_query" : "alias_query";
  return path === "/_matrix/app/v1/ping" ? "ping" : "other";
}

/** Counts and times every request the AS router answers, refusals of the token included. */
function measured(req: Request, res: Response, next: NextFunction): void {
  const started = performance.now();
  res.once("finish", () => {
    const route = routeClass(req.path);
    requests.add(1, { route, status: String(res.statusCode) });
    requestDuration.record(performance.now() - started, { route });
  });
  next();
}

/** The AS API as an express router, under /_matrix/app/v1 and the legacy unprefixed paths. */
export function createAppServiceRouter(options: AppServiceEndpointOptions): express.Router {
  const { log, txns, onEvents, onCrypto } = options;
  const prefix = txnKeyPrefix(options.hsToken);
  const queue = new PerKeyQueue();
  const router = express.Router();

  router.use(measured);
  router.use(hsTokenAuth(options.hsToken, log));

  // Read raw so that "not JSON" and "not a transaction" get the Matrix error codes, whatever the
  // content type says.
  const rawBody = express.raw({ type: () => true, limit: transactionBodyLimit });

  const transaction = async (req: Request<{ txnId: string }>, res: Response): Promise<void> => {
    const txnId = req.params.txnId;
    const parsed = parseTransaction(req.body);
    if ("errcode" in parsed) {
      log.warn({ ...requestContext(req), txnId, errcode: parsed.errcode }, `Matrix AS: ${parsed.error}`);
      sendError(res, 400, parsed.errcode, parsed.error);
      return;
    }
    const key = txnKey(prefix, txnId);
    const events = eventsDigest(parsed.events, parsed.body);
    try {
      const outcome = await queue.run(key, async () => {
        const seen = await txns.get(key);
        if (seen !== undefined && (decodeJson(seen.value) as { events?: unknown }).events === events)
          return "repeat" as const;
        // Handler first, record second: a crash in between means a retry (at least once), never a loss.
        if (onCrypto !== undefined && hasCryptoFields(parsed.body)) {
          const { transaction, refused } = readCryptoTransaction(parsed.body);
          if (refused.length > 0)
            log.warn(
              { code: "FG_NATIVE_INVALID", txnId, refused: refused.slice(0, 10) },
              "Matrix AS transaction: encryption fields left out",
            );
          await onCrypto(transaction, txnId);
        }
        await onEvents(parsed.events, txnId);
        await txns.put(key, encodeJson({ handledAt: new Date().toISOString(), events }));
        return seen === undefined ? ("handled" as const) : ("reused" as const);
      });
      if (outcome === "reused")
        log.warn(
          { txnId },
          "Matrix AS transaction id reused for other events (a homeserver restarted?); handled",
        );
      if (outcome === "repeat") log.info({ txnId }, "Matrix AS transaction repeated; already handled");
      else
        log.debug(
          { txnId, events: parsed.events.length, crypto: hasCryptoFields(parsed.body) },
          "Matrix AS transaction handled",
        );
      res.status(200).json({});
    } catch (error) {
      log.error({ err: error, txnId }, "Matrix AS transaction failed; the homeserver will retry it");
      sendError(res, 500, "M_UNKNOWN", "the transaction could not be handled; retry it");
    }
  };

  const query =
    (what: "user" | "alias", exists: ((id: string) => Promise<boolean>) | undefined) =>
    async (req: Request<{ id: string }>, res: Response): Promise<void> => {
      const id = req.params.id;
      try {
        if (exists !== undefined && (await exists(id))) {
          res.status(200).json({});
          return;
        }
      } catch (error) {
        log.error({ err: error, [what]: id }, `Matrix AS ${what} query failed`);
        sendError(res, 500, "M_UNKNOWN", `the ${what} query could not be answered`);
        return;
      }
      sendError(res, 404, "M_NOT_FOUND", `no such ${what}`);
    };

  const userQuery = query("user", options.userExists);
  const aliasQuery = query("alias", options.aliasExists);
  for (const base of ["/_matrix/app/v1", ""]) {
    router.put(`${base}/transactions/:txnId`, rawBody, transaction);
    router.get(`${base}/users/:id`, userQuery);
    router.get(`${base}/rooms/:id`, aliasQuery);
  }
  // The homeserver's check that it reaches us with the right token; the body only names a transaction.
  router.post("/_matrix/app/v1/ping", (_req, res) => {
    res.status(200).json({});
  });

  router.use((req: Request, res: Response) => {
    sendError(res, 404, "M_UNRECOGNIZED", `${req.method} ${requestPath(req)} is not an AS API endpoint`);
  });
  router.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const type =
      typeof error === "object" && error !== null && "type" in error ? String(error.type) : undefined;
    if (type === "entity.too.large") {
      log.warn({ ...requestContext(req), limit: transactionBodyLimit }, "Matrix AS request body too large");
      sendError(res, 413, "M_TOO_LARGE", `the body is larger than ${String(transactionBodyLimit)} bytes`);
      return;
    }
    log.warn({ err: error, ...requestContext(req) }, "Matrix AS request could not be read");
    sendError(res, 400, "M_NOT_JSON", "the request body could not be read");
  });
  return router;
}

/**
 * The AS endpoint listening on a socket (port 0: any free port); rejects with FG_SERVER_START_FAILED when it
 * cannot. `alongside` routers are served first, on their own paths (the bridge's file links); they must not
 * need the hs_token.
 */
export async function listenAppService(
  options: AppServiceEndpointOptions,
  host: string,
  port: number,
  alongside: express.Router[] = [],
): Promise<HttpListener> {
  const app = express();
  app.disable("x-powered-by");
  for (const router of alongside) app.use(router);
  app.use(createAppServiceRouter(options));
  return await HttpListener.listen(app, {
    host,
    port,
    what: "Matrix AS endpoint",
    log: options.log,
    headersTimeoutMs: 10_000,
    // Bounded so that a stalled request cannot hold a connection forever; a transaction waits for the bus.
    requestTimeoutMs: 90_000,
  });
}
