/**
 * A TCP relay in front of a server. In front of one that keeps its state in memory (the Stashcat-compatible
 * server), going down and coming back is what its clients see of a restart of a server that keeps its state
 * on disk: every connection is cut, the port refuses for a while, then accepts again, with the data still
 * there. Swallowing, it is a server going down that takes what its clients write and never reads it. Frozen,
 * it is a server stopped (SIGSTOP) with its connections open: new connections are accepted (as the kernel
 * accepts them for a stopped process) and nothing moves either way until it thaws, when everything held flows.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { freePort } from "../harness/servers/serverProcess.js";

export class TcpRelay {
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  /** While true, what clients write is dropped: it never reaches the server. */
  swallowing = false;
  private frozen = false;
  /** What waits for the thaw: the relaying of connections accepted while frozen, and held flows. */
  private readonly thawing: (() => void)[] = [];

  private constructor(
    /** The port clients connect to. */
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  /** Relays a free 127.0.0.1 port to `targetPort` on 127.0.0.1. */
  static async start(targetPort: number): Promise<TcpRelay> {
    // Its port must stay the same across down() and up(): one outgoing connections never take.
    const port = await freePort();
    const relay = new TcpRelay(port, targetPort);
    await relay.up();
    return relay;
  }

  /** `url` (of the target) with the relay's port instead. */
  through(url: string): string {
    const parsed = new URL(url);
    parsed.port = String(this.port);
    return parsed.toString().replace(/\/$/, url.endsWith("/") ? "/" : "");
  }

  /** Accepts connections again, on the same port. */
  async up(): Promise<void> {
    if (this.server !== undefined) return;
    const server = createServer((client) => this.relay(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Cuts every connection and refuses new ones, as a server that has gone away. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }

  /** Nothing moves on any connection, old or new, until thaw(). */
  freeze(): void {
    this.frozen = true;
    for (const socket of this.sockets) {
      socket.pause();
      this.thawing.push(() => socket.resume());
    }
  }

  thaw(): void {
    this.frozen = false;
    for (const resume of this.thawing.splice(0)) resume();
  }

  async stop(): Promise<void> {
    this.thaw();
    await this.down();
  }

  private relay(client: Socket): void {
    if (this.frozen) {
      client.pause();
      this.sockets.add(client);
      client.on("error", () => undefined);
      this.thawing.push(() => {
        this.sockets.delete(client);
        if (!client.destroyed) this.relay(client);
        client.resume();
      });
      return;
    }
    const upstream = connect(this.targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        this.sockets.delete(socket);
        // One side gone ends the other: a half-open relay would hide the cut from the client. While frozen,
        // not before the thaw: a frozen server closes nothing (the one behind the relay may still run its
        // timers, which a real frozen server would not).
        const cut = (): void => {
          client.destroy();
          upstream.destroy();
        };
        if (this.frozen) this.thawing.push(cut);
        else cut();
      });
    }
    client.on("data", (chunk: Buffer) => {
      if (!this.swallowing) upstream.write(chunk);
    });
    upstream.pipe(client);
  }
}
