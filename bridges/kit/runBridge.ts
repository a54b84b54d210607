import type { LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { connectBus } from "../../gateway/platform/bus/connectBus.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { DeliverySettings } from "./AdapterRuntime.js";

/**
 * What `fedgate bridge <network>` does for every bridge: read its section, connect the bus as a client
 * named after the bridge and its instance, start it; resolves with a function that stops both. A bridge
 * that fails to start leaves no bus connection behind.
 */
export async function runBridge<
  Section extends { instance: string },
  Bridge extends { stop(): Promise<void> },
>(
  network: string,
  loaded: LoadedConfig,
  log: Logger,
  load: (loaded: LoadedConfig) => Promise<Section>,
  start: (bus: Bus, section: Section, deliveries: DeliverySettings) => Promise<Bridge>,
): Promise<() => Promise<void>> {
  const section = await load(loaded);
  const bus = await connectBus(loaded, log, `fedgate-bridge-${network}-${section.instance}`);
  try {
    const bridge = await start(bus, section, { ackWaitMs: loaded.config.gateway.ackWaitMs });
    return async () => {
      await bridge.stop();
      await bus.close();
    };
  } catch (error) {
    await bus.close();
    throw error;
  }
}
