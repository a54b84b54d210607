/** Reads and checks bridges.xmpp from a loaded config file. */
import type { LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import { resolveSecret } from "../../gateway/platform/config/secrets.js";
import { validatorFor } from "../../schemas/contract/schemas.js";
import { bridgeSection } from "../kit/bridgeSection.js";
import type { XmppBridgeConfig } from "./config.types.js";

/** Checks a section (not from a file) and fills in the schema's defaults: what the bridge starts with. */
export const validateXmppConfig = validatorFor<XmppBridgeConfig>(
  "bridges/xmpp/config.schema.json",
  "XMPP bridge config",
  "FG_CONFIG_INVALID",
);

/** The XMPP section of the config, valid against the bridge's schema; its secret is not read. */
export function xmppSection(loaded: LoadedConfig): XmppBridgeConfig {
  return bridgeSection(loaded, "xmpp", validateXmppConfig);
}

/** The XMPP section of the config and its secret; errors name the file and the key under /bridges/xmpp. */
export async function loadXmppConfig(
  loaded: LoadedConfig,
): Promise<{ config: XmppBridgeConfig; secret: string }> {
  const config = xmppSection(loaded);
  return { config, secret: await resolveSecret(config.secret, loaded.file, "/bridges/xmpp/secret") };
}
