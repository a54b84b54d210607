/** Reads and checks bridges.stashcat from a loaded config file, with its secrets. */
import type { LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import { resolveSecret } from "../../gateway/platform/config/secrets.js";
import { validatorFor } from "../../schemas/contract/schemas.js";
import { bridgeSection } from "../kit/bridgeSection.js";
import type { StashcatBridgeConfig } from "./config.types.js";

/** Checks a section (not from a file) and fills in the schema's defaults: what the bridge starts with. */
export const validateStashcatConfig = validatorFor<StashcatBridgeConfig>(
  "bridges/stashcat/config.schema.json",
  "Stashcat bridge config",
  "FG_CONFIG_INVALID",
);

export interface LoadedStashcatConfig {
  config: StashcatBridgeConfig;
  password: string;
  /** Opens the account's private key. */
  encryptionPassword: string;
}

/** The Stashcat section, valid against the bridge's schema; its secrets are not read. */
export function stashcatSection(loaded: LoadedConfig): StashcatBridgeConfig {
  return bridgeSection(loaded, "stashcat", validateStashcatConfig);
}

/** The Stashcat section and its secrets; errors name the file and the key under /bridges/stashcat. */
export async function loadStashcatConfig(loaded: LoadedConfig): Promise<LoadedStashcatConfig> {
  const config = stashcatSection(loaded);
  const password = await resolveSecret(config.password, loaded.file, "/bridges/stashcat/password");
  const encryptionPassword =
    config.encryptionPassword === undefined
      ? password
      : await resolveSecret(config.encryptionPassword, loaded.file, "/bridges/stashcat/encryptionPassword");
  return { config, password, encryptionPassword };
}
