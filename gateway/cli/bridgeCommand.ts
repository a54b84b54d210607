import { loadBridge } from "../../bridges/index.js";
import { loadConfig } from "../platform/config/loadConfig.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { createLogger } from "../platform/log.js";
import { startTelemetry, stopTelemetry } from "../platform/telemetry.js";

export interface BridgeCommandOptions {
  config: string;
  generateRegistration?: boolean;
  url?: string;
}

/** Runs one bridge until SIGTERM or SIGINT, or writes the registration its server needs. */
export async function bridgeCommand(network: string, options: BridgeCommandOptions): Promise<void> {
  const bridge = await loadBridge(network);
  const loaded = await loadConfig(options.config);
  if (options.generateRegistration === true) {
    const generate = bridge.generateRegistration;
    if (generate === undefined)
      throw new PermanentError("FG_CONFIG_INVALID", `the ${network} bridge needs no registration`);
    const file = await generate(loaded, options.url);
    process.stdout.write(
      `fedgate: wrote ${file}\nAdd it to the homeserver's app_service_config_files (Synapse) and restart the homeserver.\n`,
    );
    return;
  }
  const log = createLogger(loaded.config.log.level, `fedgate-bridge-${network}`);
  const { otlpEndpoint } = loaded.config.telemetry;
  // Each bridge reports as a service of its own, so a trace shows which process a span ran in.
  startTelemetry({
    serviceName: `fedgate-bridge-${network}`,
    ...(otlpEndpoint === undefined ? {} : { otlpEndpoint }),
  });
  const stop = await bridge.run(loaded, log);
  log.info({ network }, "bridge started");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  log.info("stopping");
  await stop();
  await stopTelemetry();
}
