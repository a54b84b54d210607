import { loadConfig, policySource } from "../platform/config/loadConfig.js";
import { GatewayService } from "../core/GatewayService.js";
import { PolicyFileWatcher } from "../core/PolicyFileWatcher.js";
import { createLogger } from "../platform/log.js";
import { startTelemetry, stopTelemetry } from "../platform/telemetry.js";

/** Runs the routing core until SIGTERM or SIGINT; SIGHUP, or a change of the policy file, reloads the policy. */
export async function gatewayCommand(configFile: string): Promise<void> {
  const loaded = await loadConfig(configFile);
  const log = createLogger(loaded.config.log.level, "fedgate-gateway");
  startTelemetry({
    serviceName: loaded.config.telemetry.serviceName,
    ...(loaded.config.telemetry.otlpEndpoint === undefined
      ? {}
      : { otlpEndpoint: loaded.config.telemetry.otlpEndpoint }),
  });
  const gateway = await GatewayService.start(loaded, log);
  log.info({ config: loaded.file }, "gateway started");
  process.on("SIGHUP", () => {
    gateway
      .reloadPolicy()
      .catch((error: unknown) => log.error({ err: error }, "policy reload failed; keeping the old policy"));
  });
  const source = policySource(loaded);
  const watcher =
    "policyFile" in source && loaded.config.gateway.watchPolicyFile
      ? PolicyFileWatcher.start(source.policyFile, () => gateway.reloadPolicy(), log)
      : undefined;
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  log.info("stopping");
  watcher?.stop();
  await gateway.stop();
  await stopTelemetry();
}
