/**
 * The boot and stop sequence every adapter shares, owned by the kit: open the runtime (bus, stores, links),
 * let the adapter connect to its network, consume its deliveries, bring the network in line with its linked
 * conversations (now and after each change), then whatever the adapter starts last, then the watch on its
 * server connection, whose state it reports to the core (BridgeHealthReport). Whatever fails on the
 * way closes what was opened before it. stop() takes no more deliveries, then closes the adapter (which may
 * still publish what it holds), then the runtime.
 */
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import type { Logger } from "../../gateway/platform/log.js";
import { AdapterRuntime, type DeliveryHandler, type DeliverySettings } from "./AdapterRuntime.js";
import type { Capabilities } from "./capabilities.js";
import { BridgeHealthReport } from "./BridgeHealthReport.js";
import type { ConnectionWatch } from "./ConnectionWatch.js";

/** What a network's adapter supplies to the kit. */
export interface NetworkAdapter {
  deliver: DeliveryHandler;
  /** Joins (or follows) this instance's linked conversations: once at start and after each change to them. */
  reconcileLinks?(): Promise<void>;
  /** Starts what should run only once deliveries flow (e.g. a push channel whose messages need the links). */
  afterStart?(): Promise<void>;
  /** Closes what the adapter opened on its network's side; the kit closes the runtime after it. */
  close(): Promise<void>;
  /** Watches the connection to the network's server; the kit starts it once the adapter runs. */
  connection?: ConnectionWatch;
}

/** One adapter instance as the kit starts it. */
export interface AdapterDefinition<Adapter extends NetworkAdapter> {
  network: string;
  instance: string;
  /** What the network can show: the kit audits other deliveries as unsupported (see AdapterRuntime). */
  capabilities?: Capabilities;
  /** Connects to the network and builds the adapter on the kit's runtime. */
  open(runtime: AdapterRuntime): Promise<Adapter>;
}

/**
 * The adapter, running: stop() closes it and then the runtime, once; checks() says whether its server answers
 * and its deliveries are consumed (the status server's readiness).
 */
export type RunningAdapter<Adapter> = Adapter & {
  stop(): Promise<void>;
  checks(): { server: boolean; deliveries: boolean };
};

export async function startAdapter<Adapter extends NetworkAdapter>(
  bus: Bus,
  definition: AdapterDefinition<Adapter>,
  log: Logger,
  deliveries: DeliverySettings = {},
): Promise<RunningAdapter<Adapter>> {
  const { network, instance, capabilities } = definition;
  const runtime = await AdapterRuntime.open(bus, {
    network,
    instance,
    log,
    ...(capabilities === undefined ? {} : { capabilities }),
    ...deliveries,
  });
  let adapter: Adapter;
  try {
    adapter = await definition.open(runtime);
  } catch (error) {
    await runtime.close();
    throw error;
  }
  let stopped: Promise<void> | undefined;
  let consuming = false;
  let stopListening: (() => void) | undefined;
  let health: BridgeHealthReport | undefined;
  const running = Object.assign(adapter, {
    checks: () => ({
      server: adapter.connection?.ready ?? true,
      deliveries: consuming && stopped === undefined,
    }),
    stop: (): Promise<void> =>
      (stopped ??= (async () => {
        adapter.connection?.stop();
        await health?.stop();
        stopListening?.();
        try {
          await runtime.stopDeliveries();
          await adapter.close();
        } finally {
          await runtime.close();
        }
      })()),
  });
  try {
    await runtime.consumeDeliveries(adapter.deliver);
    consuming = true;
    const reconcile = adapter.reconcileLinks?.bind(adapter);
    if (reconcile !== undefined) {
      stopListening = runtime.linked.onChange(() => {
        reconcile().catch((error: unknown) =>
          log.error({ err: error, network, instance }, "cannot follow the changed links"),
        );
      });
      await reconcile();
    }
    await adapter.afterStart?.();
    if (adapter.connection !== undefined) {
      adapter.connection.start();
      // Shared with the core, whose console shows each link's bridges; this process's metrics have the same.
      health = await BridgeHealthReport.start(bus, adapter.connection, { network, instance, log });
    }
  } catch (error) {
    await running.stop();
    throw error;
  }
  return running;
}
