/**
 * A bridge's connection as the core's console shows it: what its ConnectionWatch knows, written to the
 * bridge health bucket under <network>.<instance> on each change and otherwise every check interval (every
 * third of the bucket's TTL at most, so that a live bridge's entry never expires). A bridge that stops
 * reporting expires from the bucket. Only the watch's events and a timer write, never a message's path.
 */
import type { BridgeHealth } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { encodeJson, type KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import type { Logger } from "../../gateway/platform/log.js";
import { BRIDGE_HEALTH_TTL_MS, bridgeHealthKey, buckets } from "../../schemas/contract/topology.js";
import type { ConnectionWatch } from "./ConnectionWatch.js";

export interface BridgeHealthReportOptions {
  network: string;
  instance: string;
  log: Logger;
  /** The bucket's TTL: BRIDGE_HEALTH_TTL_MS, shorter in tests. */
  ttlMs?: number;
}

export class BridgeHealthReport {
  private timer: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;
  /** The write under way; a change meanwhile is written after it, so the last state is the one stored. */
  private writing: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  private constructor(
    private readonly kv: KeyValueStore,
    private readonly watch: ConnectionWatch,
    private readonly options: BridgeHealthReportOptions,
  ) {}

  /** Opens the bucket, writes the state now and keeps writing it until stop(). */
  static async start(
    bus: Bus,
    watch: ConnectionWatch,
    options: BridgeHealthReportOptions,
  ): Promise<BridgeHealthReport> {
    const ttlMs = options.ttlMs ?? BRIDGE_HEALTH_TTL_MS;
    const report = new BridgeHealthReport(
      await bus.keyValue(buckets.bridgeHealth, { ttlMs }),
      watch,
      options,
    );
    report.stopListening = watch.onChange(() => report.write());
    report.timer = setInterval(() => report.write(), Math.min(watch.intervalMs, ttlMs / 3));
    report.timer.unref();
    report.write();
    await report.writing;
    return report;
  }

  /** Stops writing; the entry expires after the bucket's TTL, as a dead bridge's does. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.stopListening?.();
    await this.writing;
  }

  private write(): void {
    if (this.stopped) return;
    if (this.writing !== undefined) {
      this.again = true;
      return;
    }
    this.writing = this.put().finally(() => {
      this.writing = undefined;
      if (this.again) {
        this.again = false;
        this.write();
      }
    });
  }

  private async put(): Promise<void> {
    const { network, instance, log } = this.options;
    const record = this.watch.record;
    const entry: BridgeHealth = {
      specVersion: "1",
      network,
      instance,
      connected: record.connected,
      answering: record.answering,
      stalls: record.stalls,
      reconnects: record.reconnects,
      startedAt: record.startedAt.toISOString(),
      ...(record.lastAnsweredAt === undefined ? {} : { lastAnsweredAt: record.lastAnsweredAt.toISOString() }),
      ...(record.roundTripMs === undefined ? {} : { roundTripMs: record.roundTripMs }),
      updatedAt: new Date().toISOString(),
    };
    try {
      await this.kv.put(bridgeHealthKey(network, instance), encodeJson(entry));
    } catch (error) {
      // Bridging goes on; the console shows the bridge as not reporting once the last entry expires.
      log.warn({ err: error }, "cannot report the connection's health; trying again at the next change");
    }
  }
}
