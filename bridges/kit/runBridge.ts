import type { LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { connectBus } from "../../gateway/platform/bus/connectBus.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { StatusListen } from "../../schemas/types.js";
import type { DeliverySettings } from "./AdapterRuntime.js";
import { startStatusServer } from "./StatusServer.js";

/** How long /readyz waits for NATS to answer: well within a readiness probe's timeout (the chart's is 3 s). */
const READY_ROUND_TRIP_MS = 1000;

/**
 * What `fedgate bridge <network>` does for every bridge: read its section, serve its probes, connect the bus
 * as a client named after the bridge and its instance, start it; resolves with a function that stops all
 * three. A bridge that fails to start leaves nothing open behind. The probes answer from the start: alive,
 * and not ready until the bridge runs.
 */
export async function runBridge<
  Section extends { instance: string; config: { status: StatusListen } },
  Bridge extends { stop(): Promise<void>; checks(): Record<string, boolean> },
>(
  network: string,
  loaded: LoadedConfig,
  log: Logger,
  load: (loaded: LoadedConfig) => Promise<Section>,
  start: (bus: Bus, section: Section, deliveries: DeliverySettings) => Promise<Bridge>,
): Promise<() => Promise<void>> {
  const section = await load(loaded);
  let bus: Bus | undefined;
  let bridge: Bridge | undefined;
  const status = await startStatusServer(
    section.config.status,
    async () => ({
      nats: bus === undefined ? false : await bus.answers(READY_ROUND_TRIP_MS),
      ...(bridge?.checks() ?? { started: false }),
    }),
    log,
  );
  try {
    bus = await connectBus(loaded, log, `fedgate-bridge-${network}-${section.instance}`);
    try {
      bridge = await start(bus, section, { ackWaitMs: loaded.config.gateway.ackWaitMs });
    } catch (error) {
      await bus.close();
      throw error;
    }
  } catch (error) {
    await status.close();
    throw error;
  }
  const running = { bus, bridge };
  return async () => {
    await running.bridge.stop();
    await running.bus.close();
    await status.close();
  };
}
