/**
 * What each network brings to the demo and to the chaos federation: its server(s), accounts and "try it"
 * commands. Keyed like the bridge registry (a unit test holds them equal), but harness only: nothing here ships.
 */
import type { Logger } from "../../../gateway/platform/log.js";
import type { BridgeNetwork } from "../../../bridges/index.js";
import { startMatrixDemo } from "./matrixDemo.js";
import { startStashcatDemo } from "./stashcatDemo.js";
import { startXmppDemo } from "./xmppDemo.js";
import { freePort } from "../servers/serverProcess.js";

/** A demo person's account on a bridged network. */
export interface DemoAccount {
  network: string;
  instance: string;
  agency: string;
  user: string;
  password: string;
  /** Opens the account's end-to-end encryption key, where the network has one apart from the login. */
  encryptionPassword?: string;
  /** Where a client connects, and how. */
  server: string;
}

/** What a bridge's demo servers are, once started. */
export interface DemoPart {
  /** The bridge's section of the demo config (bridges.<network>). */
  config: Record<string, unknown>;
  /** The demo conversation's native id, where the server chose it (a Matrix room id). */
  conversation?: string;
  servers: Record<string, string>;
  /**
   * Where the other bridges fetch this network's files from (base URLs on 127.0.0.1): the demo lists them in
   * their attachments.hosts, since loopback is fetched from only when listed.
   */
  fileServers: string[];
  accounts: DemoAccount[];
  try: { description: string; command: string }[];
  stop(): Promise<void>;
}

/** How the demo's conversations are set up. */
export interface DemoOptions {
  /**
   * The Tchap room without encryption (the bridge still encrypts wherever a room asks it to): for a client that
   * reads and writes through the plain client-server API, as the chaos federation's does.
   */
  plainTchapRoom?: boolean;
}

/** Starts a network's demo server(s) in dir, with accounts, on 127.0.0.1. */
export type StartDemoPart = (dir: string, log: Logger, options?: DemoOptions) => Promise<DemoPart>;

/**
 * The part with its bridge's probes and metrics on a port of its own (the demo's bridges share one host), listed
 * with its servers so the demo prints where to scrape it.
 */
function withBridgeStatus(network: BridgeNetwork, start: StartDemoPart): StartDemoPart {
  return async (dir, log, options) => {
    const part = await start(dir, log, options);
    const status = { host: "127.0.0.1", port: await freePort() };
    return {
      ...part,
      config: { ...part.config, status },
      servers: {
        ...part.servers,
        [`${network}-bridge-metrics`]: `http://127.0.0.1:${String(status.port)}/metrics`,
      },
    };
  };
}

export const demoParts: Readonly<Record<BridgeNetwork, StartDemoPart>> = {
  xmpp: withBridgeStatus("xmpp", startXmppDemo),
  matrix: withBridgeStatus("matrix", startMatrixDemo),
  stashcat: withBridgeStatus("stashcat", startStashcatDemo),
};
