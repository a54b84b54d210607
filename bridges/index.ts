/**
 * The bridges this build contains, by network name: what `fedgate bridge <network>` runs, and what each
 * brings to `fedgate demo`. The gateway assembles them without knowing their protocols.
 */
import type { Command } from "commander";
import type { LoadedConfig } from "../gateway/config/loadConfig.js";
import type { Logger } from "../gateway/log.js";
import { startMatrixDemo } from "./matrix/demo.js";
import { runMatrixBridge, writeMatrixRegistration } from "./matrix/runMatrixBridge.js";
import { registerStashcatCommands } from "./stashcat/commands.js";
import { startStashcatDemo } from "./stashcat/demo.js";
import { runStashcatBridge } from "./stashcat/runStashcatBridge.js";
import { startXmppDemo } from "./xmpp/demo.js";
import { runXmppBridge } from "./xmpp/runXmppBridge.js";

/** Runs a bridge from a loaded config; resolves with a function that stops it. */
export type BridgeRunner = (loaded: LoadedConfig, log: Logger) => Promise<() => Promise<void>>;

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

export interface BridgeModule {
  run: BridgeRunner;
  /** Starts the bridge's demo server(s) in dir, with accounts, on 127.0.0.1. */
  startDemo?: (dir: string, log: Logger) => Promise<DemoPart>;
  /**
   * Writes what the bridge's server must be given before the bridge can run (a Matrix homeserver's
   * Application Service registration); resolves with the file written.
   */
  generateRegistration?: (loaded: LoadedConfig, url?: string) => Promise<string>;
  /** Commands of the bridge's own under `fedgate` (a person's view of its network, for the demo). */
  commands?: (program: Command) => void;
}

export const bridges: Readonly<Record<string, BridgeModule>> = {
  xmpp: { run: runXmppBridge, startDemo: startXmppDemo },
  matrix: { run: runMatrixBridge, startDemo: startMatrixDemo, generateRegistration: writeMatrixRegistration },
  stashcat: { run: runStashcatBridge, startDemo: startStashcatDemo, commands: registerStashcatCommands },
};
