/**
 * Stashcat's push channel (socket.io): after each connect the client authenticates with `userid` (its
 * socket id, device id and client_key), the server confirms with `new_device_connected`, and from then on
 * sends `message_sync` with the full message object for every new or changed message in the account's chats.
 *
 * The channel has no replay: whatever happens while it is down is only found by reading the chats again,
 * which the bridge does in onReady, called after every (re)authentication. It reconnects forever.
 * `notification` repeats messages from others that message_sync already carries, so it is ignored.
 */
import { io, type Socket } from "socket.io-client";
import { FedgateError, TransientError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { StashcatClient } from "./StashcatClient.js";

export interface StashcatPushOptions {
  /** The push server, e.g. https://push.stashcat.com. */
  pushUrl: string;
  deviceId: string;
  /** Its session (client_key, socket id) authenticates the channel, and is renewed through it. */
  client: Pick<StashcatClient, "clientKey" | "socketId" | "checkSession" | "onSessionRenewed">;
  log: Logger;
  /** A message_sync payload, as it came: parse it with parseMessage. */
  onMessage(raw: unknown): void;
  /** After each (re)authentication: the bridge catches up on what it missed here. */
  onReady(): void;
  /** The socket went; it reconnects by itself, and onReady follows once it is authenticated again. */
  onDisconnect?(): void;
  /** Longest wait for the first authentication before connect() fails; default 30 s. */
  connectTimeoutMs?: number;
  /** Longest wait for `new_device_connected` after a connect before the session is checked; default 15 s. */
  authTimeoutMs?: number;
}

/** Reconnection delays: from 1 s doubling up to 30 s, with jitter, for ever. */
const RECONNECT_DELAY_MS = 1000;
const RECONNECT_DELAY_MAX_MS = 30_000;

export class StashcatPush {
  private readonly socket: Socket;
  private readonly options: StashcatPushOptions;
  private readonly log: Logger;
  private stopped = false;
  /** Connected but not yet confirmed by new_device_connected. */
  private awaitingAuth = false;
  /** A session check for an unconfirmed login is under way. */
  private checking = false;
  private authTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Restarts since the last confirmed authentication, for the backoff. */
  private failures = 0;
  private readonly stopRenewals: () => void;
  private firstReady: { resolve: () => void; reject: (error: Error) => void } | undefined;

  private constructor(options: StashcatPushOptions) {
    this.options = options;
    this.log = options.log;
    this.socket = io(options.pushUrl, {
      path: "/socket.io",
      transports: ["websocket", "polling"],
      autoConnect: false,
      reconnection: true,
      reconnectionAttempts: Infinity,
      reconnectionDelay: RECONNECT_DELAY_MS,
      reconnectionDelayMax: RECONNECT_DELAY_MAX_MS,
      randomizationFactor: 0.5,
    });
    this.socket.on("connect", () => this.authenticate());
    this.socket.on("new_device_connected", (info: unknown) => this.confirmed(info));
    this.socket.on("message_sync", (raw: unknown) => this.deliver(raw));
    // Not every server says so; one that does saves the wait for the confirmation.
    this.socket.on("unauthorized", () => void this.unconfirmed());
    this.socket.on("disconnect", (reason) => this.disconnected(reason));
    this.socket.on("connect_error", (error) => {
      // socket.io's messages name the transport's failure, never the URL's query or the credentials.
      this.log.debug({ reason: error.message }, "Stashcat push cannot connect; retrying");
    });
    // A session renewed through the REST API leaves this socket's login expired: log in with the new one.
    this.stopRenewals = options.client.onSessionRenewed(() => {
      if (!this.stopped && this.socket.connected) this.authenticate();
    });
  }

  /** Connects and authenticates; resolves once the server confirmed, FG_PEER_UNAVAILABLE if it never does. */
  static async connect(options: StashcatPushOptions): Promise<StashcatPush> {
    const push = new StashcatPush(options);
    const timeoutMs = options.connectTimeoutMs ?? 30_000;
    const ready = new Promise<void>((resolve, reject) => {
      push.firstReady = { resolve, reject };
    });
    const timer = setTimeout(() => {
      push.firstReady?.reject(
        new TransientError(
          "FG_PEER_UNAVAILABLE",
          `Stashcat push: not authenticated within ${String(timeoutMs)} ms`,
          { detail: { endpoint: "push" } },
        ),
      );
    }, timeoutMs);
    push.socket.connect();
    try {
      await ready;
    } catch (error) {
      await push.stop();
      throw error;
    } finally {
      clearTimeout(timer);
      push.firstReady = undefined;
    }
    return push;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopRenewals();
    clearTimeout(this.authTimer);
    clearTimeout(this.retryTimer);
    this.socket.removeAllListeners();
    this.socket.disconnect();
    return Promise.resolve();
  }

  private authenticate(): void {
    if (this.stopped) return;
    this.awaitingAuth = true;
    const { client, deviceId } = this.options;
    this.socket.emit("userid", {
      hidden_id: client.socketId,
      device_id: deviceId,
      client_key: client.clientKey,
    });
    clearTimeout(this.authTimer);
    this.authTimer = setTimeout(() => void this.unconfirmed(), this.options.authTimeoutMs ?? 15_000);
  }

  /**
   * Refused or no confirmation: most likely the session expired, which the REST API tells for sure. With a
   * renewed session the socket logs in again at once; otherwise it starts over after a while.
   */
  private async unconfirmed(): Promise<void> {
    if (!this.stillUnconfirmed() || this.checking) return;
    this.checking = true;
    clearTimeout(this.authTimer);
    this.log.warn({}, "Stashcat push: authentication not confirmed; checking the session");
    const key = this.options.client.clientKey;
    try {
      await this.options.client.checkSession();
    } catch (error) {
      this.log.warn({ code: codeOf(error) }, "Stashcat push: the session check failed");
    } finally {
      this.checking = false;
    }
    // The socket may have been confirmed, renewed or stopped during the check.
    if (!this.stillUnconfirmed()) return;
    if (this.options.client.clientKey !== key) {
      this.authenticate();
      return;
    }
    this.socket.disconnect();
    this.restart();
  }

  private stillUnconfirmed(): boolean {
    return !this.stopped && this.awaitingAuth;
  }

  private confirmed(info: unknown): void {
    // The event also announces the account's other devices; only the answer to our own userid counts.
    const device =
      typeof info === "object" && info !== null ? (info as Record<string, unknown>)["device_id"] : undefined;
    if (!this.awaitingAuth || (typeof device === "string" && device !== this.options.deviceId)) return;
    this.awaitingAuth = false;
    this.failures = 0;
    clearTimeout(this.authTimer);
    this.log.info({}, "Stashcat push authenticated");
    this.firstReady?.resolve();
    try {
      this.options.onReady();
    } catch (error) {
      this.log.error({ code: codeOf(error) }, "Stashcat push: onReady failed");
    }
  }

  private deliver(raw: unknown): void {
    if (this.stopped) return;
    try {
      this.options.onMessage(raw);
    } catch (error) {
      this.log.error({ code: codeOf(error) }, "Stashcat push: onMessage failed");
    }
  }

  /**
   * Asks the server whether the socket is still authenticated (its ack is a boolean): resolves on the answer,
   * rejects when the socket is not authenticated or no answer came within timeoutMs. A server that forgot the
   * socket's session gets `userid` again.
   */
  heartbeat(timeoutMs: number): Promise<void> {
    if (this.stopped || this.awaitingAuth || !this.socket.connected)
      return Promise.reject(new TransientError("FG_PEER_UNAVAILABLE", "Stashcat push is not authenticated"));
    return new Promise((resolve, reject) => {
      this.socket.timeout(timeoutMs).emit("heartbeat", (error: Error | null, authenticated: unknown) => {
        if (error !== null) {
          reject(
            new TransientError("FG_PEER_UNAVAILABLE", "no answer to the Stashcat push heartbeat", {
              cause: error,
            }),
          );
          return;
        }
        resolve();
        if (authenticated !== false || this.stopped) return;
        this.log.info({}, "Stashcat push: the server dropped the authentication; authenticating again");
        this.authenticate();
      });
    });
  }

  /**
   * Drops a socket the server stopped answering on and connects again at once: socket.io's own pings would
   * notice only after its ping interval and timeout, and only when the server is the one that pings.
   */
  reconnect(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.socket.disconnect();
    this.socket.connect();
    return Promise.resolve();
  }

  private disconnected(reason: Socket.DisconnectReason): void {
    clearTimeout(this.authTimer);
    this.awaitingAuth = false;
    if (this.stopped) return;
    this.log.warn({ reason }, "Stashcat push disconnected");
    this.options.onDisconnect?.();
    // socket.io reconnects by itself, except when the server closed the socket on purpose.
    if (reason === "io server disconnect") this.restart();
  }

  /** Connects again after a delay that grows with each attempt that did not end authenticated. */
  private restart(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const delay = Math.min(RECONNECT_DELAY_MS * 2 ** this.failures, RECONNECT_DELAY_MAX_MS);
    this.failures++;
    this.retryTimer = setTimeout(
      () => {
        if (!this.stopped && !this.socket.connected) this.socket.connect();
      },
      delay * (0.5 + Math.random()),
    );
  }
}

function codeOf(error: unknown): string {
  return error instanceof FedgateError ? error.code : error instanceof Error ? error.name : "unknown";
}
