import type { LoadedConfig } from "../../gateway/config/loadConfig.js";
import { connectBus } from "../../gateway/GatewayService.js";
import type { Logger } from "../../gateway/log.js";
import { loadStashcatConfig } from "./config.js";
import { StashcatBridge } from "./StashcatBridge.js";

/** `fedgate bridge stashcat`: connects the bus and the service account; resolves with a function that stops both. */
export async function runStashcatBridge(loaded: LoadedConfig, log: Logger): Promise<() => Promise<void>> {
  const stashcat = await loadStashcatConfig(loaded);
  const bus = await connectBus(loaded, log, `fedgate-bridge-stashcat-${stashcat.config.instance}`);
  try {
    const bridge = await StashcatBridge.start(bus, stashcat, log);
    return async () => {
      await bridge.stop();
      await bus.close();
    };
  } catch (error) {
    await bus.close();
    throw error;
  }
}
