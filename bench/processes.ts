/**
 * The processes benchmarks start and what each one costs: `fedgate` as it ships (the built CLI, with the
 * image's environment) or a bench script, each in its own process, pinned to CPUs when asked;
 * and its CPU time and memory as /proc tells them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { stopChild } from "../test/harness/servers/hostServer.js";

/** The fedgate command as built (`dist/gateway/cli/main.js`), next to the built bench. */
export const mainJs = fileURLToPath(new URL("../gateway/cli/main.js", import.meta.url));

/** Every child started here that has not exited yet, for killAllStarted. */
const running = new Set<ChildProcess>();

/**
 * Starts `node script ...args` with its output appended to `logFile`, in a process group of its own (Ctrl-C
 * reaches only the bench, which stops its children in order). The parent-death signal stops it should the
 * bench die first. With `cpus` (taskset's list, "0" or "0,1") it runs on those CPUs only. taskset and
 * setpriv exec what follows them, so the child's pid is node's, the one /proc is read for.
 */
export function spawnNode(
  script: string,
  args: string[],
  options: { logFile: string; cpus?: string; env?: NodeJS.ProcessEnv; nodeArgs?: string[] },
): ChildProcess {
  const out = openSync(options.logFile, "a");
  const node = [process.execPath, ...(options.nodeArgs ?? []), script, ...args];
  const command = ["setpriv", "--pdeathsig", "TERM", "--", ...node];
  const pinned = options.cpus === undefined ? command : ["taskset", "-c", options.cpus, ...command];
  try {
    const child = spawn(pinned[0] ?? "", pinned.slice(1), {
      stdio: ["ignore", out, out],
      detached: true,
      env: { ...(options.env ?? process.env), ...imageEnv() },
    });
    running.add(child);
    child.once("exit", () => running.delete(child));
    return child;
  } finally {
    closeSync(out);
  }
}

/**
 * The environment the image gives its processes: the ENV lines of the Dockerfile's last stage, so that what
 * the bench measures runs as what ships (NODE_ENV, the heap's NODE_OPTIONS).
 */
export function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8").split("\n");
  const lastStage = dockerfile.findLastIndex((line) => line.startsWith("FROM "));
  const env: Record<string, string> = {};
  for (const line of dockerfile.slice(lastStage)) {
    const assignment = /^ENV (\w+)=(\S+)$/.exec(line.trim());
    if (assignment?.[1] !== undefined && assignment[2] !== undefined) env[assignment[1]] = assignment[2];
  }
  return env;
}

/**
 * `fedgate gateway --config configFile` as the image runs it; the config, not NATS_URL or
 * OTEL_EXPORTER_OTLP_ENDPOINT, says where it connects and exports. With BENCH_CPU_PROF set to a folder, each
 * core writes a CPU profile there when it stops (node refuses --cpu-prof in NODE_OPTIONS).
 */
export function spawnCore(
  configFile: string,
  logFile: string,
  options: { cpus?: string } = {},
): ChildProcess {
  const profileDir = process.env["BENCH_CPU_PROF"];
  const nodeArgs = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  return spawnNode(mainJs, ["gateway", "--config", configFile], {
    logFile,
    env: configOnlyEnv(),
    nodeArgs,
    ...options,
  });
}

/** `fedgate bridge <network> --config configFile` as the image runs it; like spawnCore, the config alone says where. */
export function spawnBridge(network: string, configFile: string, logFile: string): ChildProcess {
  return spawnNode(mainJs, ["bridge", network, "--config", configFile], { logFile, env: configOnlyEnv() });
}

/** The bench's environment without what would override the config's servers. */
function configOnlyEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env["NATS_URL"];
  delete env["OTEL_EXPORTER_OTLP_ENDPOINT"];
  return env;
}

/** Processes under test, started; `logs` are theirs, for a failure's message. */
export interface Launched {
  children: ChildProcess[];
  logs: string[];
}

/** Throws, with the logs' ends, if a process under test has exited. */
export async function checkAlive(launched: Launched): Promise<void> {
  for (const [i, child] of launched.children.entries()) {
    if (exited(child)) {
      const file = launched.logs[i] ?? "";
      throw new Error(
        `a process under test exited (${String(child.exitCode ?? child.signalCode)}); ${file}:\n${await tail(file)}`,
      );
    }
  }
}

/** Polls `check` every `pollMs` until it holds; fails when a process under test exits or after `timeoutMs`. */
export async function waitUntil(
  launched: Launched,
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  pollMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    await checkAlive(launched);
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** SIGTERM, so the process stops in order; SIGKILL if it has not stopped after `timeoutMs`. */
export function stopProcess(child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  return stopChild(child, timeoutMs);
}

/** Kills whatever spawnNode started and is still running: for a bench that ends early or fails. */
export function killAllStarted(): void {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
}

/** Whether a child has exited. */
export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Pins a running process, every thread of it, to `cpus` (taskset's list). */
export async function pin(pid: number, cpus: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`taskset could not pin ${String(pid)} to ${cpus}`)),
    );
  });
}

export async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function statusKb(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
  const status = await readFile(`/proc/${String(pid)}/status`, "utf8");
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
  if (kb === undefined) throw new Error(`no ${field} for process ${String(pid)}`);
  return Number(kb);
}

/** VmRSS of a process, in bytes. */
export async function rssOf(pid: number): Promise<number> {
  return (await statusKb(pid, "VmRSS")) * 1024;
}

/** The most the process's RSS has been since it started (VmHWM), in bytes. */
export async function peakRssOf(pid: number): Promise<number> {
  return (await statusKb(pid, "VmHWM")) * 1024;
}

/** Linux's USER_HZ: /proc reports CPU times in these ticks. */
export const TICKS_PER_SECOND = 100;

/** CPU time a process used so far (user + system, every thread), in seconds. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${String(pid)}/stat`, "utf8");
  // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * The pids of this process's descendants whose command line `match` accepts: the servers it started,
 * however many execs (setpriv, unshare, chroot) stand between.
 */
export async function descendantPids(match: (args: string[]) => boolean): Promise<number[]> {
  const parentOf = new Map<number, number>();
  const argsOf = new Map<number, string[]>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name, which may hold spaces: state, then the parent's pid.
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      argsOf.set(Number(entry), (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0"));
    } catch {
      // Gone meanwhile: not ours.
    }
  }
  const ours = (pid: number): boolean => {
    for (let parent = parentOf.get(pid); parent !== undefined && parent > 1; parent = parentOf.get(parent))
      if (parent === process.pid) return true;
    return false;
  };
  return [...argsOf].filter(([pid, args]) => ours(pid) && match(args)).map(([pid]) => pid);
}

/**
 * The pid of the nats-server LocalNatsServer started on `storeDir`, found by its command line since
 * LocalNatsServer keeps its child to itself.
 */
export async function natsPidOf(storeDir: string): Promise<number> {
  const [pid] = await descendantPids(
    (args) => args.some((a) => a.endsWith("nats-server")) && args.includes(storeDir),
  );
  if (pid === undefined) throw new Error(`no nats-server process for ${storeDir}`);
  return pid;
}
