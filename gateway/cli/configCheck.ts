import { loadBridge } from "../../bridges/index.js";
import { loadConfig } from "../platform/config/loadConfig.js";
import { checkDeclaredLinks, loadPolicy } from "../core/GatewayService.js";

/** Validates config, policy, each bridge's section and declared links; prints a summary, or throws the first ConfigError. */
export async function checkConfigCommand(configFile: string): Promise<void> {
  const loaded = await loadConfig(configFile);
  const lines = [`config ${loaded.file}: OK`];
  const { gateway } = loaded.config;
  // A bridge's config names no policy: only the core's is checked against one.
  if (gateway.policy !== undefined || gateway.policyFile !== undefined) {
    const policy = await loadPolicy(loaded);
    checkDeclaredLinks(loaded.config, loaded.file, policy);
    lines.push(`policy: ${policy.summary()}`);
  }
  for (const network of Object.keys(loaded.config.bridges)) {
    (await loadBridge(network)).checkSection(loaded);
    lines.push(`bridges.${network}: OK`);
  }
  lines.push(`links declared: ${String(loaded.config.links.length)}`);
  process.stdout.write(lines.join("\n") + "\n");
}
