/**
 * The bridges this build contains, by network name: the one list `fedgate bridge <network>`, the chart, the
 * codegen and the image derive from. Each adapter is imported only when its bridge runs, so a broken or
 * missing adapter module fails that bridge alone and never `fedgate gateway` or `fedgate --help`.
 */
import type { LoadedConfig } from "../gateway/platform/config/loadConfig.js";
import type { Logger } from "../gateway/platform/log.js";
import { PermanentError } from "../schemas/contract/errors.js";

/** Runs a bridge from a loaded config; resolves with a function that stops it. */
export type BridgeRunner = (loaded: LoadedConfig, log: Logger) => Promise<() => Promise<void>>;

export interface BridgeModule {
  run: BridgeRunner;
  /** Checks the bridge's section of the config against its schema, without reading secrets or connecting. */
  checkSection: (loaded: LoadedConfig) => void;
  /**
   * Writes what the bridge's server must be given before the bridge can run (a Matrix homeserver's
   * Application Service registration); resolves with the file written.
   */
  generateRegistration?: (loaded: LoadedConfig, url?: string) => Promise<string>;
}

const loaders = {
  matrix: async (): Promise<BridgeModule> => {
    const [matrix, config] = await Promise.all([
      import("./matrix/runMatrixBridge.js"),
      import("./matrix/config.js"),
    ]);
    return {
      run: matrix.runMatrixBridge,
      checkSection: config.matrixSection,
      generateRegistration: matrix.writeMatrixRegistration,
    };
  },
  xmpp: async (): Promise<BridgeModule> => {
    const [xmpp, config] = await Promise.all([import("./xmpp/runXmppBridge.js"), import("./xmpp/config.js")]);
    return { run: xmpp.runXmppBridge, checkSection: config.xmppSection };
  },
  stashcat: async (): Promise<BridgeModule> => {
    const [stashcat, config] = await Promise.all([
      import("./stashcat/runStashcatBridge.js"),
      import("./stashcat/config.js"),
    ]);
    return { run: stashcat.runStashcatBridge, checkSection: config.stashcatSection };
  },
};

export type BridgeNetwork = keyof typeof loaders;

/** The networks, in the order people read them (CLI help, chart values, docs). */
export const bridgeNetworks = Object.keys(loaders) as readonly BridgeNetwork[];

function isBridgeNetwork(name: string): name is BridgeNetwork {
  return Object.hasOwn(loaders, name);
}

/** Imports one bridge's adapter; a network not in this build, or a module that fails to load, is a typed error. */
export async function loadBridge(network: string): Promise<BridgeModule> {
  if (!isBridgeNetwork(network)) {
    throw new PermanentError(
      "FG_BRIDGE_UNAVAILABLE",
      `the ${network} bridge is not part of this build (available: ${bridgeNetworks.join(", ")})`,
    );
  }
  try {
    return await loaders[network]();
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new PermanentError(
      "FG_BRIDGE_UNAVAILABLE",
      `the ${network} bridge could not be loaded: ${reason}`,
      {
        cause,
      },
    );
  }
}
