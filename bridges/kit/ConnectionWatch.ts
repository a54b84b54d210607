/**
 * "Connected, but nothing arrives": a connection can stay open while the server behind it answers nothing
 * (frozen, overloaded, a half-dead NAT), and the library keeping it sees no error. The watch asks the server
 * for an application-level round trip on a schedule; one not answered in time is a stall: readiness fails, the
 * stall is counted and logged, and the adapter reconnects, after which it catches up on what it missed as it
 * does after any reconnection. The adapter also reports its own connection events, so readiness follows a
 * connection that is plainly down too.
 */
import type { ConnectionCheck } from "../../schemas/types.js";
import type { Logger } from "../../gateway/platform/log.js";
import { counter, observableGauge } from "../../gateway/platform/telemetry.js";
import { FedgateError } from "../../schemas/contract/errors.js";

/** What an adapter gives the watch: its server's round trip, and how to connect again. */
export interface ServerConnection {
  /** One application-level round trip to the server; rejects when it fails. The watch bounds how long it waits. */
  ping(timeoutMs: number): Promise<void>;
  /**
   * Drops the connection the server stopped answering on, or an attempt to open one that hangs, so that it is
   * opened again; does nothing when a new attempt is already due.
   */
  reconnect(): Promise<void>;
}

export interface ConnectionWatchOptions {
  network: string;
  instance: string;
  log: Logger;
  check: ConnectionCheck;
}

const stalls = counter("fedgate_bridge_stalls_total", {
  description:
    "Round trips to a bridge's server not answered in time while its connection was open; each one reconnects.",
});
const reconnects = counter("fedgate_bridge_reconnects_total", {
  description:
    "Times a bridge's connection to its server came back after it was lost or dropped for a stall.",
});

/** What the watch knows of the connection now. */
export interface ConnectionHealth {
  /** Open, as the adapter's own connection events say. */
  connected: boolean;
  /** The last round trip was answered in time (or none failed since the connection came up). */
  answering: boolean;
}

/** The connection's state and history since the watch started: what the bridge reports to the core. */
export interface ConnectionRecord extends ConnectionHealth {
  /** Stalls and reconnects counted since start (as fedgate_bridge_stalls_total, _reconnects_total). */
  stalls: number;
  reconnects: number;
  startedAt: Date;
  /** When the last round trip was answered, and how long it took. */
  lastAnsweredAt?: Date;
  roundTripMs?: number;
}

export class ConnectionWatch {
  private connected = true;
  private answering = true;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopGauge: (() => void) | undefined;
  private stallCount = 0;
  private reconnectCount = 0;
  private readonly startedAt = new Date();
  private lastAnswer: { at: Date; roundTripMs: number } | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly server: ServerConnection,
    private readonly options: ConnectionWatchOptions,
  ) {}

  get health(): ConnectionHealth {
    return { connected: this.connected, answering: this.answering };
  }

  get record(): ConnectionRecord {
    return {
      ...this.health,
      stalls: this.stallCount,
      reconnects: this.reconnectCount,
      startedAt: this.startedAt,
      ...(this.lastAnswer === undefined
        ? {}
        : { lastAnsweredAt: this.lastAnswer.at, roundTripMs: this.lastAnswer.roundTripMs }),
    };
  }

  /**
   * Calls `listener` whenever connected, answering or a count changes (not on every answered round trip);
   * returns what stops it.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The check the watch runs: how often it asks the server. */
  get intervalMs(): number {
    return this.options.check.intervalMs;
  }

  /** Whether the server can be worked with: connected and answering. */
  get ready(): boolean {
    return this.connected && this.answering;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const attributes = { network: this.options.network, instance: this.options.instance };
    this.stopGauge = observableGauge(
      "fedgate_bridge_connected",
      { description: "1 while a bridge's connection to its server is open and answering, else 0." },
      (report) => report(this.ready ? 1 : 0, attributes),
    );
    this.schedule();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.stopGauge?.();
  }

  /** The adapter's connection came up (again): a completed handshake is an answer. */
  connectedNow(): void {
    const before = this.ready;
    if (!this.connected) {
      reconnects.add(1, { network: this.options.network, instance: this.options.instance });
      this.reconnectCount++;
      this.options.log.info({}, "connection to the server is back");
    }
    this.connected = true;
    this.answering = true;
    if (!before) this.changed();
  }

  /** The adapter's connection went down; its own reconnection brings it back. */
  disconnectedNow(): void {
    const before = this.connected;
    this.connected = false;
    if (before) this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => void this.probe(), this.options.check.intervalMs);
  }

  /** One round trip; a missing answer on an open connection is a stall and reconnects. */
  private async probe(): Promise<void> {
    const { timeoutMs } = this.options.check;
    const { log, network, instance } = this.options;
    const sent = performance.now();
    try {
      await withTimeout(this.server.ping(timeoutMs), timeoutMs);
      this.lastAnswer = { at: new Date(), roundTripMs: Math.round((performance.now() - sent) * 10) / 10 };
      if (!this.answering) {
        this.answering = true;
        this.changed();
      }
    } catch (error) {
      if (!this.running) return;
      const wasAnswering = this.answering;
      this.answering = false;
      // Only a connection that looks open is a stall; one the adapter knows is down is already coming back.
      if (this.connected) {
        stalls.add(1, { network, instance });
        this.stallCount++;
      }
      if (wasAnswering || this.connected) {
        this.changed();
        log.warn(
          { code: error instanceof FedgateError ? error.code : undefined, reason: String(error), timeoutMs },
          this.connected
            ? "the server does not answer on an open connection; reconnecting"
            : "the server does not answer while reconnecting",
        );
      }
      // Also while reconnecting: an attempt can hang on a frozen server that accepted the TCP connection.
      try {
        await this.server.reconnect();
      } catch (cause) {
        log.warn({ err: cause }, "cannot reconnect to the server yet");
      }
    } finally {
      this.schedule();
    }
  }
}

class PingTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${String(timeoutMs)} ms`);
  }
}

/** The round trip, or a rejection once it took longer than timeoutMs (the round trip may still settle). */
async function withTimeout(trip: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      trip,
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new PingTimeout(timeoutMs)), timeoutMs)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
