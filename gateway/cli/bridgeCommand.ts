import { bridges } from "../../bridges/index.js";
import { loadConfig } from "../config/loadConfig.js";
import { PermanentError } from "../errors.js";
import { createLogger } from "../log.js";

/** Runs one bridge until SIGTERM or SIGINT. */
export async function bridgeCommand(network: string, configFile: string): Promise<void> {
  const run = bridges[network]?.run;
  if (run === undefined) {
    throw new PermanentError(
      "FG_BRIDGE_UNAVAILABLE",
      `the ${network} bridge is not part of this build (available: ${Object.keys(bridges).join(", ")})`,
    );
  }
  const loaded = await loadConfig(configFile);
  const log = createLogger(loaded.config.log?.level ?? "info", `fedgate-bridge-${network}`);
  const stop = await run(loaded, log);
  log.info({ network }, "bridge started");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  log.info("stopping");
  await stop();
}
