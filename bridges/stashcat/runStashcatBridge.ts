import type { LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import type { Logger } from "../../gateway/platform/log.js";
import { runBridge } from "../kit/runBridge.js";
import { loadStashcatConfig } from "./config.js";
import { StashcatBridge } from "./StashcatBridge.js";

/** `fedgate bridge stashcat`: connects the bus and the service account; resolves with a function that stops both. */
export function runStashcatBridge(loaded: LoadedConfig, log: Logger): Promise<() => Promise<void>> {
  return runBridge(
    "stashcat",
    loaded,
    log,
    async (l) => {
      const stashcat = await loadStashcatConfig(l);
      return { ...stashcat, instance: stashcat.config.instance };
    },
    (bus, stashcat, deliveries) => StashcatBridge.start(bus, stashcat, log, deliveries),
  );
}
