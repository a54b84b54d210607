/**
 * A server run as a process of this machine: what FEDGATE_SERVERS=packages (the default) runs, and how
 * ejabberd always runs (see serverRuntime.ts).
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import type { ServerHandle } from "./serverRuntime.js";

/**
 * Starts a server process in a process group of its own: Ctrl-C in the terminal reaches only us, and we
 * stop the servers in order (the bridges and the core first, NATS last) instead of all of them dying under
 * a core still writing to NATS. The parent-death signal still stops the server should we die first.
 */
export function spawnServer(command: string, args: string[], stdio: StdioOptions): ChildProcess {
  return spawn("setpriv", ["--pdeathsig", "TERM", "--", command, ...args], { stdio, detached: true });
}

/**
 * Asks a process to stop (`signal`, SIGTERM by default), kills it after `timeoutMs`; resolves once it has
 * exited.
 */
export function stopChild(
  child: ChildProcess,
  timeoutMs: number,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** Runs a command to its end; its exit code and everything it printed. */
export function runCommand(
  command: string,
  args: string[],
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, output }));
  });
}

/** A server process of this machine, our child in a process group of its own. */
export class HostServer implements ServerHandle {
  readonly process: ChildProcess;
  readonly exited: Promise<string>;

  constructor(name: string, command: string, args: string[]) {
    this.process = spawnServer(command, args, ["ignore", "pipe", "pipe"]);
    this.exited = new Promise((resolve) => {
      this.process.once("error", (error) => resolve(`could not run ${command}: ${error.message}`));
      this.process.once("exit", (code, signal) => resolve(`${name} exited with ${String(signal ?? code)}`));
    });
  }

  onOutput(listener: (text: string) => void): void {
    const forward = (chunk: Buffer): void => listener(chunk.toString());
    this.process.stdout?.on("data", forward);
    this.process.stderr?.on("data", forward);
  }

  signal(signal: NodeJS.Signals): Promise<void> {
    this.process.kill(signal);
    return Promise.resolve();
  }

  stop(timeoutMs: number, signal?: NodeJS.Signals): Promise<void> {
    return stopChild(this.process, timeoutMs, signal);
  }
}
