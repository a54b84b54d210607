/** Resolves secret references ({env}, {file}, {value}) from the config. The value is never logged. */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Secret } from "../../../schemas/types.js";
import { ConfigError } from "../../../schemas/contract/errors.js";

export async function resolveSecret(
  secret: Secret,
  configFile: string,
  pointer: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if ("value" in secret) return secret.value;
  if ("env" in secret) {
    const value = env[secret.env];
    if (value === undefined || value === "") {
      throw new ConfigError(configFile, pointer, `environment variable ${secret.env} is not set`, {
        code: "FG_SECRET_UNAVAILABLE",
      });
    }
    return value;
  }
  const path = resolve(dirname(configFile), secret.file);
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (cause) {
    throw new ConfigError(configFile, pointer, `cannot read secret file ${path}`, {
      code: "FG_SECRET_UNAVAILABLE",
      cause,
    });
  }
}
