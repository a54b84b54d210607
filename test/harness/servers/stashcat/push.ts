/**
 * Stashcat's realtime channel: socket.io on a host of its own. A socket logs in by emitting `userid` with
 * the session's client_key, its device and the account's hidden id (`userinfo.socket_id`), and is answered
 * `new_device_connected`; from then on it receives its user's events, for as long as that session lives.
 * There is no replay: what happens while a socket is away, it never gets.
 */
import { createServer, type Server as HttpServer } from "node:http";
import { Server, type Socket } from "socket.io";
import type { Logger } from "../../../../gateway/platform/log.js";
import type { Session, Store } from "./store.js";

interface SocketState {
  session: Session | undefined;
}

function record(value: unknown): Record<string, unknown> | undefined {
  if (typeof value === "string") {
    // Some clients emit the login as a JSON string rather than an object.
    try {
      return record(JSON.parse(value));
    } catch {
      return undefined;
    }
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export class Push {
  private readonly byUser = new Map<number, Set<Socket>>();
  private readonly loginListeners = new Set<(userId: number) => void>();

  private constructor(
    private readonly http: HttpServer,
    private readonly io: Server,
    private readonly store: Store,
    private readonly log: Logger,
    /** Base URL of the socket.io server (path /socket.io). */
    readonly url: string,
  ) {
    io.on("connection", (socket) => this.accept(socket));
  }

  /** Listens on host:port (0: any free port); `ping` replaces socket.io's heartbeat timing. */
  static async listen(
    host: string,
    port: number,
    store: Store,
    log: Logger,
    ping?: { intervalMs: number; timeoutMs: number },
  ): Promise<Push> {
    const http = createServer();
    // Older clients speak Engine.IO 3; the real server evidently still accepts them.
    const io = new Server(http, {
      path: "/socket.io",
      serveClient: false,
      allowEIO3: true,
      ...(ping === undefined ? {} : { pingInterval: ping.intervalMs, pingTimeout: ping.timeoutMs }),
    });
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(port, host, () => {
        http.off("error", reject);
        resolve();
      });
    });
    const address = http.address();
    if (address === null || typeof address === "string") {
      await io.close();
      throw new Error("the push server is not on a TCP address");
    }
    const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return new Push(http, io, store, log, `http://${hostPart}:${String(address.port)}`);
  }

  private state(socket: Socket): SocketState {
    return socket.data as SocketState;
  }

  private live(socket: Socket): Session | undefined {
    const session = this.state(socket).session;
    return session !== undefined && this.store.isLive(session) ? session : undefined;
  }

  private accept(socket: Socket): void {
    this.state(socket).session = undefined;

    socket.on("userid", (payload: unknown) => {
      const login = record(payload);
      const clientKey = login?.["client_key"];
      const deviceId = login?.["device_id"];
      const hiddenId = login?.["hidden_id"];
      const session =
        typeof clientKey === "string" && typeof deviceId === "string"
          ? this.store.session(clientKey, deviceId)
          : undefined;
      const user = session === undefined ? undefined : this.store.findUser(session.userId);
      if (session === undefined || user === undefined || hiddenId !== user.socketId) {
        this.log.debug({ socket: socket.id }, "Stashcat push login refused");
        // The socket stays open: the client may log in again with a fresh client_key.
        socket.emit("unauthorized", {
          message:
            session === undefined ? "client_key invalid or expired" : "hidden_id does not match the session",
        });
        return;
      }
      this.forget(socket);
      this.state(socket).session = session;
      let sockets = this.byUser.get(user.id);
      if (sockets === undefined) this.byUser.set(user.id, (sockets = new Set()));
      sockets.add(socket);
      socket.emit("new_device_connected", { device_id: deviceId, ip_address: socket.handshake.address });
      for (const listener of this.loginListeners) listener(user.id);
    });

    // The ack says whether the socket is still logged in; clients poll it to notice a lapsed session.
    socket.on("heartbeat", (...args: unknown[]) => {
      const ack = args.at(-1);
      if (typeof ack === "function") (ack as (alive: boolean) => void)(this.live(socket) !== undefined);
    });

    // Clients send (device_id, client_key, type, id) or (type, id); nothing here shows typing.
    socket.on("started-typing", () => undefined);

    socket.on("disconnect", () => this.forget(socket));
  }

  private forget(socket: Socket): void {
    const session = this.state(socket).session;
    if (session === undefined) return;
    const sockets = this.byUser.get(session.userId);
    sockets?.delete(socket);
    if (sockets?.size === 0) this.byUser.delete(session.userId);
    this.state(socket).session = undefined;
  }

  /** Calls `listener` right after each socket login is confirmed; returns the function that removes it. */
  onLogin(listener: (userId: number) => void): () => void {
    this.loginListeners.add(listener);
    return () => this.loginListeners.delete(listener);
  }

  /** Whether the user has a logged-in socket. */
  online(userId: number): boolean {
    return [...(this.byUser.get(userId) ?? [])].some((socket) => this.live(socket) !== undefined);
  }

  /** Emits to every logged-in socket of the user whose session still lives. */
  emit(userId: number, event: string, payload: unknown): void {
    for (const socket of this.byUser.get(userId) ?? [])
      if (this.live(socket) !== undefined) socket.emit(event, payload);
  }

  /** Cuts every connection as a network failure would: clients see a transport close and reconnect. */
  dropConnections(): void {
    for (const socket of this.io.of("/").sockets.values()) {
      this.forget(socket);
      socket.conn.close();
    }
  }

  async close(): Promise<void> {
    this.byUser.clear();
    this.io.disconnectSockets(true);
    // io.close also closes the HTTP server it is attached to.
    await this.io.close();
    this.http.closeAllConnections();
  }
}
