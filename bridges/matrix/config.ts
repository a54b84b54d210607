/** Reads and checks bridges.matrix from a loaded config file, and the registration file it names. */
import { createHash } from "node:crypto";
import { dirname, resolve } from "node:path";
import { readText, type LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import { validatorFor } from "../../schemas/contract/schemas.js";
import { ConfigError } from "../../schemas/contract/errors.js";
import { bridgeSection } from "../kit/bridgeSection.js";
import type { MatrixBridgeConfig } from "./config.types.js";
import { ENCRYPTION_OPT_INS, parseRegistration, type AppServiceRegistration } from "./registration.js";

/** Checks a section (not from a file) and fills in the schema's defaults: what the bridge starts with. */
export const validateMatrixConfig = validatorFor<MatrixBridgeConfig>(
  "bridges/matrix/config.schema.json",
  "Matrix bridge config",
  "FG_CONFIG_INVALID",
);

/** Section and registration together; the registration's tokens are the bridge's secrets. */
export interface LoadedMatrixConfig {
  config: MatrixBridgeConfig;
  registration: AppServiceRegistration;
}

/**
 * The Matrix section and its registration. Errors name the file and key: a ghost a homeserver would not
 * route to the bridge (outside the registration's user namespace) is a config error at start-up, not a
 * silent loss later.
 */
export async function loadMatrixConfig(loaded: LoadedConfig): Promise<LoadedMatrixConfig> {
  const config = matrixSection(loaded);
  const file = registrationPath(loaded, config);
  const registration = parseRegistration(await readText(file), file);
  const sampleGhost = `@${config.ghostPrefix}x:${config.serverName}`;
  const covered = registration.namespaces.users.some(
    (ns) => ns.exclusive && new RegExp(`^(?:${ns.regex})`).test(sampleGhost),
  );
  if (!covered) {
    throw new ConfigError(
      loaded.file,
      "/bridges/matrix/ghostPrefix",
      `ghosts such as ${sampleGhost} are outside the exclusive user namespace of ${file}`,
    );
  }
  const { storeFile, storeKeyFile } = config.encryption;
  if ((storeFile === undefined) !== (storeKeyFile === undefined))
    throw new ConfigError(
      loaded.file,
      `/bridges/matrix/encryption/${storeFile === undefined ? "storeFile" : "storeKeyFile"}`,
      "storeFile and storeKeyFile go together: the store is never kept on disk unencrypted",
    );
  // Read from the config file's folder, as the registration is.
  if (storeFile !== undefined) config.encryption.storeFile = resolve(dirname(loaded.file), storeFile);
  if (storeKeyFile !== undefined)
    config.encryption.storeKeyFile = resolve(dirname(loaded.file), storeKeyFile);
  if (config.encryption.enabled) {
    // Without them the homeserver never hands the bridge's device its keys: every message stays unreadable.
    const missing = ENCRYPTION_OPT_INS.find((key) => registration[key] !== true);
    if (missing !== undefined)
      throw new ConfigError(
        file,
        `/${missing}`,
        "must be true for encrypted rooms (bridges.matrix.encryption.enabled); the homeserver must then load the file again",
      );
  }
  return { config, registration };
}

/** The Matrix section alone, before any registration exists. */
export function matrixSection(loaded: LoadedConfig): MatrixBridgeConfig {
  return bridgeSection(loaded, "matrix", validateMatrixConfig);
}

/** The registration file, a relative path read from the config file's folder. */
export function registrationPath(loaded: LoadedConfig, config: MatrixBridgeConfig): string {
  return resolve(dirname(loaded.file), config.registrationFile);
}

/** Characters the store's secret must have at least: a random secret, not a word. */
const MIN_STORE_SECRET = 32;

/**
 * The key the crypto store is encrypted with (32 bytes), from the secret in `file` (surrounding white space
 * left out, as a mounted Secret may end in a line break). The secret never appears in an error.
 */
export async function readStoreKey(file: string): Promise<Uint8Array> {
  const secret = (await readText(file)).trim();
  if (secret.length < MIN_STORE_SECRET)
    throw new ConfigError(file, "", `must hold a secret of at least ${String(MIN_STORE_SECRET)} characters`);
  return createHash("sha256").update(`fedgate crypto store\0${secret}`, "utf8").digest();
}
