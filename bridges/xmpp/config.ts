/** Reads and checks bridges.xmpp from a loaded config file. */
import { configErrorFor } from "../../gateway/config/loadConfig.js";
import type { LoadedConfig } from "../../gateway/config/loadConfig.js";
import { resolveSecret } from "../../gateway/config/secrets.js";
import { validatorFor } from "../../gateway/contract/schemas.js";
import { ConfigError } from "../../gateway/errors.js";
import type { XmppBridgeConfig } from "./config.types.js";

const validateXmppConfig = validatorFor<XmppBridgeConfig>(
  "bridges/xmpp/config.schema.json",
  "XMPP bridge config",
  "FG_CONFIG_INVALID",
);

/** The XMPP section of the config and its secret; errors name the file and the key under /bridges/xmpp. */
export async function loadXmppConfig(
  loaded: LoadedConfig,
): Promise<{ config: XmppBridgeConfig; secret: string }> {
  const section = loaded.config.bridges?.["xmpp"];
  if (section === undefined) throw new ConfigError(loaded.file, "/bridges", "has no xmpp section");
  const problem = validateXmppConfig.problems(section)[0];
  if (problem !== undefined) {
    throw configErrorFor(loaded.file, { ...problem, pointer: `/bridges/xmpp${problem.pointer}` }, () => "");
  }
  const config = section as XmppBridgeConfig;
  return { config, secret: await resolveSecret(config.secret, loaded.file, "/bridges/xmpp/secret") };
}
