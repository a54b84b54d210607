/**
 * Where the servers of the tests and the demo run, chosen by FEDGATE_SERVERS: `packages` (the default) runs
 * them from Debian's packages on this machine; `containers` runs them in containers through testcontainers,
 * on whatever engine it finds (Docker, or Podman's Docker-compatible service), from locally built images
 * (serverImage.ts). Either way a server is the same command line over the same folders on the same
 * 127.0.0.1 ports: a container shares the host's network and sees each folder at its host path. So each
 * launcher writes one config and checks readiness one way, whichever of the two runs the process.
 *
 * nats-server, Prosody and Synapse run either way; ejabberd, whose stop signals its Erlang VM by the pid it
 * writes, runs on the host either way.
 */
import { ConfigError } from "../../../schemas/contract/errors.js";
import { ensureDebianBinary } from "./debianPackages.js";
import { HostServer, runCommand } from "./hostServer.js";

export type ServerRuntimeKind = "packages" | "containers";

/** The environment variable that chooses. */
export const SERVER_RUNTIME_SETTING = "FEDGATE_SERVERS";

const KINDS: readonly ServerRuntimeKind[] = ["packages", "containers"];

/** What FEDGATE_SERVERS asks for; unset or empty is `packages`. */
export function serverRuntimeKind(env: NodeJS.ProcessEnv = process.env): ServerRuntimeKind {
  const value = env[SERVER_RUNTIME_SETTING];
  if (value === undefined || value === "") return "packages";
  const kind = KINDS.find((known) => known === value);
  if (kind === undefined)
    throw new ConfigError(
      "environment",
      SERVER_RUNTIME_SETTING,
      `must be ${KINDS.join(" or ")}, not ${JSON.stringify(value.slice(0, 40))}`,
    );
  return kind;
}

/** A server's command line and the folders it uses, the same for both runtimes. */
export interface ServerCommand {
  /** The Debian package that provides `binary`: installed on this machine, or in the image. */
  package: string;
  /** The command by name, looked up on this machine's PATH or the image's. */
  binary: string;
  args: string[];
  /** Absolute host folders the command reads or writes; a container sees each at the same path. */
  folders: string[];
}

/** A running server, wherever it runs. */
export interface ServerHandle {
  /** Everything the server prints, stdout and stderr, as it prints it. */
  onOutput(listener: (text: string) => void): void;
  /** Why the server ended, once it has. */
  readonly exited: Promise<string>;
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Sends `signal` (default SIGTERM), SIGKILL after `timeoutMs`; resolves once the server is gone. */
  stop(timeoutMs: number, signal?: NodeJS.Signals): Promise<void>;
}

export interface ServerRuntime {
  readonly kind: ServerRuntimeKind;
  /** Starts a server; it is not serving yet, its launcher checks when it does. */
  start(name: string, command: ServerCommand): Promise<ServerHandle>;
  /** Runs a command of the server's package to its end (prosodyctl, say); its exit code and output. */
  run(command: ServerCommand): Promise<{ code: number | null; output: string }>;
}

/** Servers from Debian's packages, installed on first use when we are root. */
export const packagesRuntime: ServerRuntime = {
  kind: "packages",
  async start(name, command) {
    return new HostServer(name, await ensureDebianBinary(command.binary, command.package), command.args);
  },
  async run(command) {
    return runCommand(await ensureDebianBinary(command.binary, command.package), command.args);
  },
};

let containers: Promise<ServerRuntime> | undefined;

/**
 * The runtime FEDGATE_SERVERS chooses. testcontainers is loaded only when containers are asked for, so the
 * default path never depends on it.
 */
export function serverRuntime(env: NodeJS.ProcessEnv = process.env): Promise<ServerRuntime> {
  if (serverRuntimeKind(env) === "packages") return Promise.resolve(packagesRuntime);
  containers ??= import("./containerRuntime.js").then((module) => module.containerRuntime);
  return containers;
}
