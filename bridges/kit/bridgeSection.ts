/** Reads and checks one bridge's section (bridges.<network>) of a loaded config file. */
import { configErrorFor, type LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import type { Validator } from "../../schemas/contract/schemas.js";
import { ConfigError } from "../../schemas/contract/errors.js";

/** The section, valid against the bridge's schema (defaults filled in); errors name the file and the key. */
export function bridgeSection<T>(loaded: LoadedConfig, network: string, validate: Validator<T>): T {
  const section = loaded.config.bridges[network];
  if (section === undefined) throw new ConfigError(loaded.file, "/bridges", `has no ${network} section`);
  const problem = validate.problems(section)[0];
  if (problem !== undefined) {
    throw configErrorFor(
      loaded.file,
      { ...problem, pointer: `/bridges/${network}${problem.pointer}` },
      () => "",
    );
  }
  return section as T;
}
