/**
 * What the console shows of each network instance a link reaches: the connection its bridge reports (the
 * bridge health bucket, written by bridges/kit/BridgeHealthReport.ts) and how far behind the bridge's
 * deliveries are (its durable consumer, as the server counts it, asked at most every 15 s). Metadata only.
 */
import type { BridgeHealth } from "../../../../schemas/types.js";
import { validateBridgeHealth } from "../../../../schemas/contract/schemas.js";
import {
  adapterConsumer,
  BRIDGE_HEALTH_TTL_MS,
  bridgeHealthKey,
  buckets,
} from "../../../../schemas/contract/topology.js";
import type { Bus, ConsumerLag } from "../../../platform/bus/Bus.js";
import { ConsumerLagReading } from "../../../platform/bus/ConsumerLagReading.js";
import { decodeJson, type KeyValueStore } from "../../../platform/bus/KeyValueStore.js";
import type { Logger } from "../../../platform/log.js";

/** One network instance, as a link's endpoint names it. */
export interface InstanceRef {
  network: string;
  instance: string;
}

export interface InstanceStatus {
  /** The bridge's last report; undefined while none is in the bucket (not started, stopped or dead). */
  bridge: BridgeHealth | undefined;
  /** undefined while no bridge has consumed the instance's deliveries, or the server cannot be asked. */
  lag: ConsumerLag | undefined;
}

/** Instances whose lag readings are kept; the oldest is forgotten past this (links name any instance). */
const KEPT_READINGS = 1000;

export class BridgeStatuses {
  private readonly readings = new Map<string, ConsumerLagReading>();

  private constructor(
    private readonly bus: Bus,
    private readonly kv: KeyValueStore,
    private readonly log: Logger,
  ) {}

  static async open(bus: Bus, log: Logger): Promise<BridgeStatuses> {
    // With the bridges' TTL: whichever process creates the bucket, entries expire alike.
    const kv = await bus.keyValue(buckets.bridgeHealth, { ttlMs: BRIDGE_HEALTH_TTL_MS });
    return new BridgeStatuses(bus, kv, log.child({ component: "console" }));
  }

  /** Each instance's status, by bridgeHealthKey; every instance is read once, all at the same time. */
  async of(instances: readonly InstanceRef[]): Promise<Map<string, InstanceStatus>> {
    const distinct = new Map(instances.map((i) => [bridgeHealthKey(i.network, i.instance), i]));
    const statuses = await Promise.all(
      [...distinct].map(async ([key, ref]) => {
        const [bridge, lag] = await Promise.all([this.report(key), this.reading(key, ref).fresh()]);
        return [key, { bridge, lag }] as const;
      }),
    );
    return new Map(statuses);
  }

  private async report(key: string): Promise<BridgeHealth | undefined> {
    try {
      const entry = await this.kv.get(key);
      if (entry === undefined || entry.operation !== "PUT") return undefined;
      return validateBridgeHealth(decodeJson(entry.value));
    } catch (error) {
      this.log.warn({ err: error, key }, "cannot read a bridge's health report; the console shows none");
      return undefined;
    }
  }

  private reading(key: string, { network, instance }: InstanceRef): ConsumerLagReading {
    let reading = this.readings.get(key);
    if (reading === undefined) {
      const consumer = adapterConsumer(network, instance);
      reading = new ConsumerLagReading("FEDGATE_OUTBOUND", consumer, () =>
        this.bus.consumerLag("FEDGATE_OUTBOUND", consumer),
      );
      this.readings.set(key, reading);
      if (this.readings.size > KEPT_READINGS)
        this.readings.delete(this.readings.keys().next().value as string);
    }
    return reading;
  }
}
