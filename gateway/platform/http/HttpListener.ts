/**
 * How every process serves HTTP (the admin API, the Matrix AS endpoint, the bridges' file links): bounded
 * timeouts, a typed error when the address cannot be bound, the base URL it answers on, and a close that
 * waits for the requests in progress.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import type { Logger } from "pino";
import { PermanentError } from "../../../schemas/contract/errors.js";

export interface HttpListenOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  /** What serves here, as errors and logs name it ("admin API"). */
  what: string;
  log: Logger;
  /** Bounds that keep a slow or stalled client from holding a connection open indefinitely. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

export class HttpListener {
  private constructor(
    private readonly server: Server,
    /** Base URL it answers on, e.g. http://127.0.0.1:8480. */
    readonly url: string,
  ) {}

  /** Starts listening; rejects with FG_SERVER_START_FAILED when the address cannot be bound. */
  static async listen(handler: RequestListener, options: HttpListenOptions): Promise<HttpListener> {
    const { host, port, what, log } = options;
    const server = createServer(handler);
    server.headersTimeout = options.headersTimeoutMs;
    server.requestTimeout = options.requestTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(
          new PermanentError(
            "FG_SERVER_START_FAILED",
            `${what} cannot listen on ${host}:${port}: ${error.message}`,
            {
              cause: error,
            },
          ),
        );
      };
      server.once("error", onError);
      server.listen(port, host, () => {
        server.off("error", onError);
        resolve();
      });
    });
    server.on("error", (error) => log.error({ err: error }, `${what} server error`));
    const address = server.address();
    if (address === null || typeof address === "string") {
      server.close();
      throw new PermanentError("FG_SERVER_START_FAILED", `${what} is not listening on a TCP address`);
    }
    const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return new HttpListener(server, `http://${hostPart}:${address.port}`);
  }

  /** Stops accepting connections and resolves once open requests are done. Safe to call twice. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}
