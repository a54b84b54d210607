import { loadConfig } from "../platform/config/loadConfig.js";
import { checkDeclaredLinks, loadPolicy } from "../core/GatewayService.js";

/** Validates config, policy and declared links; prints a summary, or throws the first ConfigError. */
export async function checkConfigCommand(configFile: string): Promise<void> {
  const loaded = await loadConfig(configFile);
  const lines = [`config ${loaded.file}: OK`];
  if (loaded.config.gateway !== undefined) {
    const policy = await loadPolicy(loaded);
    checkDeclaredLinks(loaded.config, loaded.file, policy);
    lines.push(`policy: ${policy.summary()}`);
  }
  lines.push(`links declared: ${loaded.config.links?.length ?? 0}`);
  process.stdout.write(lines.join("\n") + "\n");
}
