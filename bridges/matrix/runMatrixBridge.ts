import { writeFile } from "node:fs/promises";
import type { LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import { ConfigError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import { runBridge } from "../kit/runBridge.js";
import { loadMatrixConfig, matrixSection, registrationPath } from "./config.js";
import { MatrixBridge } from "./MatrixBridge.js";
import { generateRegistration } from "./registration.js";

/** `fedgate bridge matrix`: connects the bus and serves the homeserver; resolves with a function that stops both. */
export function runMatrixBridge(loaded: LoadedConfig, log: Logger): Promise<() => Promise<void>> {
  return runBridge(
    "matrix",
    loaded,
    log,
    async (l) => {
      const matrix = await loadMatrixConfig(l);
      return { ...matrix, instance: matrix.config.instance };
    },
    (bus, matrix, deliveries) => MatrixBridge.start(bus, matrix, log, deliveries),
  );
}

/**
 * `fedgate bridge matrix --generate-registration`: writes the registration file bridges.matrix names, with
 * fresh tokens. An existing file is never overwritten: its tokens are what the homeserver already trusts.
 * `url` is where the homeserver reaches the bridge; default the bridge's listen address.
 */
export async function writeMatrixRegistration(loaded: LoadedConfig, url?: string): Promise<string> {
  const config = matrixSection(loaded);
  const file = registrationPath(loaded, config);
  const { yaml } = generateRegistration({
    id: `fedgate-${config.instance}`,
    url: url ?? `http://${config.listen.host}:${String(config.listen.port)}`,
    serverName: config.serverName,
    ghostPrefix: config.ghostPrefix,
  });
  try {
    await writeFile(file, yaml, { mode: 0o600, flag: "wx" });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new ConfigError(
      loaded.file,
      "/bridges/matrix/registrationFile",
      code === "EEXIST"
        ? `${file} exists already; remove it first to replace its tokens (the homeserver must then load the new file)`
        : `cannot write ${file}: ${code ?? String(cause)}`,
      { cause },
    );
  }
  return file;
}
