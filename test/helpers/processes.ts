/** Runs fedgate commands as separate processes, from source, as an operator would run them. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

export interface FedgateProcess {
  child: ChildProcess;
  /** Everything the process wrote, stdout and stderr. */
  output(): string;
  /** Resolves when a line of output contains text. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/**
 * `ownGroup` runs it as a terminal runs a command: in a process group of its own, so that a signal to the
 * group (`process.kill(-pid, "SIGINT")`) is what Ctrl-C does.
 */
export function runFedgate(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { ownGroup?: boolean } = {},
): FedgateProcess {
  return runEntry("gateway/cli/main.ts", args, env, options);
}

/** The demo's own command (test/harness/demo/main.ts), run as `npm run demo` runs it. */
export function runDemo(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { ownGroup?: boolean } = {},
): FedgateProcess {
  return runEntry("test/harness/demo/main.ts", args, env, options);
}

function runEntry(
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { ownGroup?: boolean },
): FedgateProcess {
  const child = spawn(process.execPath, ["--import", "tsx", entry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.ownGroup === true,
  });
  let output = "";
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    for (const listener of listeners) listener();
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    waitFor(text, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (output.includes(text)) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for "${text}"; output so far:\n${output}`));
        }, timeoutMs);
        listeners.add(check);
        void exited.then(() => {
          if (!output.includes(text)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`process exited before "${text}"; output:\n${output}`));
          }
        });
        check();
      });
    },
  };
}
