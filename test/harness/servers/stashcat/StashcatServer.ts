/**
 * A Stashcat-compatible server for fedgate's tests and demo, run in-process. Stashcat publishes no server,
 * so this one answers the client API as Stashcat's public client libraries use it, quirks included: the
 * REST API on one port and the socket.io push channel on another, as the real service has two hosts.
 * State lives in memory and is gone on stop.
 */
import { createServer, type Server } from "node:http";
import { PermanentError } from "../../../../schemas/contract/errors.js";
import { createLogger, type Logger } from "../../../../gateway/platform/log.js";
import { accountRoutes } from "./accountRoutes.js";
import { createApi, type ApiContext } from "./api.js";
import { chatRoutes } from "./chatRoutes.js";
import { fileRoutes } from "./fileRoutes.js";
import { messageRoutes, publish } from "./messageRoutes.js";
import type { RefusalCode } from "./envelope.js";
import { Push } from "./push.js";
import { stashcatSeed, type Seed } from "./seed.js";
import { Store, type ChatType } from "./store.js";

export type { Seed, SeedChannel, SeedConversation, SeedUser } from "./seed.js";
export { seedUser, stashcatSeed } from "./seed.js";

export interface StashcatServerOptions {
  /** The one address both ports bind to; default 127.0.0.1. */
  host?: string;
  /** REST API port; 0 (the default) takes a free one. */
  port?: number;
  /** socket.io port; 0 (the default) takes a free one. */
  pushPort?: number;
  /** Default: stashcatSeed(), with fresh keys. */
  seed?: Seed;
  /** A session's life from its login; default: unlimited. */
  clientKeyTtlMs?: number;
  /** Hand out channel keys as the raw key in 64 hex characters, as some deployments do. */
  rawChannelKeys?: boolean;
  /**
   * How messages say they are deleted: "time" (the default: null while live, the quoted unix time of the
   * deletion after, as gostashcat reads the real server) or "boolean" (as stashcat-api declares it).
   */
  deletedAs?: "time" | "boolean";
  /**
   * How often the push server pings each socket and how long it waits for the answer before it drops the
   * socket; default socket.io's (25 s and 20 s). Short values let tests see a frozen client dropped.
   */
  pushPing?: { intervalMs: number; timeoutMs: number };
  /** Largest file accepted; default 20 MiB. */
  maxUploadBytes?: number;
  /** Default: silent. */
  log?: Logger;
}

const DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024;

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("not on a TCP address"));
      else resolve(address.port);
    });
  });
}

function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

export class StashcatServer {
  private constructor(
    private readonly http: Server,
    private readonly push: Push,
    private readonly store: Store,
    private readonly ctx: ApiContext,
    /** Base URL of the REST API, with a trailing slash: http://127.0.0.1:PORT/ */
    readonly apiUrl: string,
    /** Base URL of the push channel (socket.io at path /socket.io): http://127.0.0.1:PUSHPORT */
    readonly pushUrl: string,
    readonly seed: Seed,
  ) {}

  /** Starts both ports; rejects with FG_SERVER_START_FAILED when either cannot listen. */
  static async start(options: StashcatServerOptions = {}): Promise<StashcatServer> {
    const host = options.host ?? "127.0.0.1";
    const seed = options.seed ?? stashcatSeed();
    const log = options.log ?? createLogger("silent");
    const store = new Store(seed, options.clientKeyTtlMs);
    let push: Push;
    try {
      push = await Push.listen(host, options.pushPort ?? 0, store, log, options.pushPing);
    } catch (cause) {
      throw new PermanentError(
        "FG_SERVER_START_FAILED",
        `Stashcat push server cannot listen on ${host}:${String(options.pushPort ?? 0)}: ${(cause as Error).message}`,
        { cause },
      );
    }
    const ctx: ApiContext = {
      store,
      push,
      log,
      rawChannelKeys: options.rawChannelKeys ?? false,
      deletedAs: options.deletedAs ?? "time",
      maxUploadBytes: options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
      online: (userId) => push.online(userId),
      delays: new Map(),
      refusals: new Map(),
    };
    const app = createApi(ctx, { ...accountRoutes, ...chatRoutes, ...messageRoutes, ...fileRoutes });
    const http = createServer(app);
    http.headersTimeout = 10_000;
    http.requestTimeout = 60_000;
    let port: number;
    try {
      port = await listen(http, host, options.port ?? 0);
    } catch (cause) {
      await push.close();
      throw new PermanentError(
        "FG_SERVER_START_FAILED",
        `Stashcat API server cannot listen on ${host}:${String(options.port ?? 0)}: ${(cause as Error).message}`,
        { cause },
      );
    }
    http.on("error", (error) => log.error({ err: error }, "Stashcat test server error"));
    return new StashcatServer(
      http,
      push,
      store,
      ctx,
      `http://${urlHost(host)}:${String(port)}/`,
      push.url,
      seed,
    );
  }

  /** Every existing session answers auth_invalid from now on, and its push sockets receive nothing. */
  expireClientKeys(): void {
    this.store.expireSessions();
  }

  /** Cuts every push connection as a network failure would; clients reconnect and must log in again. */
  dropPushConnections(): void {
    this.push.dropConnections();
  }

  /**
   * Pushes an event as it is given to a user's sockets: what a newer Stashcat might send that this server
   * never makes itself (another kind of entry, a malformed object), so that tests can show a client copes.
   */
  pushRaw(userId: number, event: string, payload: unknown): void {
    this.push.emit(userId, event, payload);
  }

  /**
   * Calls `listener` with the user's id right after a push socket's login is confirmed (after
   * `new_device_connected`), in the same instant: for tests that act the moment a client is back. Returns
   * the function that removes it.
   */
  onPushLogin(listener: (userId: number) => void): () => void {
    return this.push.onLogin(listener);
  }

  /**
   * Stores and pushes a message as `message/send` would for this user, at once and without a request: for
   * tests that must write in an exact instant (while a client's push socket is away, or just back). The text
   * is stored as given (hex ciphertext when encrypted). Returns the message id.
   */
  writeAs(
    userId: number,
    chat: { type: ChatType; id: number },
    message: { text: string; iv?: string; encrypted: boolean },
  ): number {
    const target = this.store.memberChat(chat.type, chat.id, userId);
    const stored = this.store.addEntry(target, userId, "", {
      text: message.text,
      iv: message.iv ?? null,
      encrypted: message.encrypted,
    });
    publish(this.ctx, target, stored, true);
    return stored.id;
  }

  /**
   * Holds back every answer of `endpoint` (such as `message/content`) by `ms` after it was made, as a slow
   * network would; 0 ends it. The answer is what the server held when the request came.
   */
  slowDown(endpoint: string, ms: number): void {
    if (ms > 0) this.ctx.delays.set(endpoint.toLowerCase(), ms);
    else this.ctx.delays.delete(endpoint.toLowerCase());
  }

  /** Refuses every call of `endpoint` with `shortMessage` (such as no_permission) until called with undefined. */
  refuse(endpoint: string, shortMessage: RefusalCode | undefined): void {
    if (shortMessage === undefined) this.ctx.refusals.delete(endpoint.toLowerCase());
    else this.ctx.refusals.set(endpoint.toLowerCase(), shortMessage);
  }

  private stopped: Promise<void> | undefined;

  /** Closes both ports and every connection; a second call waits for the first. */
  stop(): Promise<void> {
    this.stopped ??= this.close();
    return this.stopped;
  }

  private async close(): Promise<void> {
    await this.push.close();
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }
}
