/**
 * A minimal Debian sid tree with Synapse installed, for LocalSynapse: Debian 12 has no matrix-synapse
 * package, sid has. Built once (about a minute, 550 MB) and cached outside the repo, in
 * /var/cache/fedgate/synapse-sid or $FEDGATE_SYNAPSE_CHROOT.
 *
 * The tree is built next to its final place and renamed there when complete, with a marker written last,
 * so a half-built tree is never taken for done. A lock (flock) keeps test files that start at once from
 * building it twice; every build step holds it too, so that one left running by a killed build keeps the
 * next build waiting rather than sharing its folder. /proc is mounted for apt inside a mount namespace of
 * its own, which the kernel tears down with the last process in it: a killed build leaves nothing mounted.
 *
 * Run directly (`npx tsx test/harness/servers/matrix/buildSynapseChroot.ts`) it builds the tree with progress, as
 * scripts/install-deps.sh does so that CI builds it before the tests start.
 */
import { spawn } from "node:child_process";
import { mkdir, open, readFile, rename, stat, writeFile, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { PermanentError } from "../../../../schemas/contract/errors.js";
import { ensureDebianBinary } from "../debianPackages.js";

const DEFAULT_CHROOT = "/var/cache/fedgate/synapse-sid";
const MIRROR = "http://deb.debian.org/debian";
/** Written last into a complete tree; a different recipe in it makes the tree be rebuilt. */
const MARKER = ".fedgate-complete";
/** Bump when the build steps change, so that trees built the old way are replaced. */
const RECIPE = 1;
/** Another process may be building; a build takes minutes, far less than this. */
const LOCK_TIMEOUT_S = 1200;
const PROGRESS_INTERVAL_MS = 5_000;

/** What the marker of a complete tree says. */
export interface SynapseChrootInfo {
  dir: string;
  recipe: number;
  synapseVersion: string;
  builtAt: string;
}

/** Where the tree lives: $FEDGATE_SYNAPSE_CHROOT, or the default cache folder. */
export function synapseChrootDir(): string {
  const configured = process.env["FEDGATE_SYNAPSE_CHROOT"];
  return resolve(configured === undefined || configured === "" ? DEFAULT_CHROOT : configured);
}

/** PATH and locale for commands run inside the tree, whatever the caller's environment. */
export const chrootEnv: NodeJS.ProcessEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
  HOME: "/root",
};

export function progress(line: string): void {
  process.stderr.write(`fedgate: ${line}\n`);
}

async function readMarker(dir: string): Promise<SynapseChrootInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(join(dir, MARKER), "utf8")) as Partial<SynapseChrootInfo>;
    if (info.recipe !== RECIPE || typeof info.synapseVersion !== "string") return undefined;
    return { dir, recipe: info.recipe, synapseVersion: info.synapseVersion, builtAt: info.builtAt ?? "" };
  } catch {
    return undefined;
  }
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The descriptor the lockfile has in every build step, clear of the low ones that scripts use. */
export const LOCK_FD = 9;

interface Ran {
  code: number | null;
  output: string;
}

/**
 * Runs a command to its end, keeping the tail of what it printed, with the lockfile (when given) open as
 * descriptor LOCK_FD: the lock is held for as long as any process of the build still runs, even one left
 * behind by a killed build, so that the next builder cannot start on the same folder under its feet.
 */
function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; lockFd?: number; onOutput?: (text: string) => void } = {},
): Promise<Ran> {
  return new Promise((done, fail) => {
    const stdio: ("ignore" | "pipe" | number)[] = ["ignore", "pipe", "pipe"];
    if (options.lockFd !== undefined) {
      while (stdio.length < LOCK_FD) stdio.push("ignore");
      stdio.push(options.lockFd);
    }
    const child = spawn(command, args, { stdio, env: options.env ?? process.env });
    let output = "";
    const collect = (chunk: Buffer): void => {
      const text = chunk.toString();
      // The tail is what an error shows; a build prints megabytes, of which the end says what failed.
      output = (output + text).slice(-200_000);
      options.onOutput?.(text);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    child.on("error", fail);
    child.on("exit", (code) => done({ code, output }));
  });
}

function failed(what: string, command: string, args: string[], ran: Ran): PermanentError {
  const tail = ran.output.trimEnd().split("\n").slice(-30).join("\n");
  return new PermanentError(
    "FG_SERVER_START_FAILED",
    `${what} failed (exit ${String(ran.code)}): ${[command, ...args].join(" ")}\n--- output (tail) ---\n${tail}`,
  );
}

/**
 * Runs a long build step, printing its latest line every few seconds so the wait is visible without
 * flooding the test output. Fails with the command's output tail.
 */
export async function runStep(
  lockFd: number,
  label: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const started = Date.now();
  const elapsed = (): string => `${String(Math.round((Date.now() - started) / 1000))} s`;
  progress(`${label}…`);
  let latest = "";
  let shown = "";
  const timer = setInterval(() => {
    if (latest === shown) return;
    shown = latest;
    progress(`  ${elapsed()}: ${latest.trim().slice(0, 150)}`);
  }, PROGRESS_INTERVAL_MS);
  let ran: Ran;
  try {
    ran = await run(command, args, {
      env,
      lockFd,
      onOutput: (text) => (latest = text.split("\n").findLast((line) => line.trim() !== "") ?? latest),
    });
  } catch (error) {
    throw new PermanentError("FG_SERVER_START_FAILED", `${label}: could not run ${command}`, {
      cause: error,
    });
  } finally {
    clearInterval(timer);
  }
  if (ran.code !== 0) throw failed(label, command, args, ran);
  progress(`${label}: done in ${elapsed()}`);
  return ran.output;
}

/**
 * Opens `file` and takes an exclusive flock(2) on it, which lasts until the handle is closed and every
 * build step given its descriptor has ended. The kernel drops it when they are all gone, so a killed
 * build leaves no stale lock, unlike a pid written into a lockfile.
 */
export async function lock(file: string): Promise<FileHandle> {
  const handle = await open(file, "a");
  const waiting = setTimeout(
    () => progress(`waiting for another process building ${file.replace(/\.lock$/, "")} (lock ${file})…`),
    1000,
  );
  try {
    // flock(1) locks the open file it is given, which is ours too: the lock outlives the command.
    const args = ["--exclusive", "--wait", String(LOCK_TIMEOUT_S), String(LOCK_FD)];
    const ran = await run("flock", args, { lockFd: handle.fd });
    if (ran.code !== 0) throw failed(`locking ${file}`, "flock", args, ran);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  } finally {
    clearTimeout(waiting);
  }
}

/**
 * Removes a tree without ever following a mount point out of it: a leftover /proc or bind mount inside a
 * half-built tree (from a build run by hand) must not take the host's files with it.
 */
export async function removeTree(dir: string): Promise<void> {
  if (!(await exists(dir))) return;
  const args = ["-rf", "--one-file-system", "--", dir];
  const ran = await run("rm", args);
  if (ran.code !== 0) throw failed(`removing ${dir}`, "rm", args, ran);
}

/**
 * Builds a minimal Debian tree of `suite` with `packages` installed at `dir` (which must not exist yet): the
 * Synapse chroot here, and the servers' container image (containers/serverImage.ts).
 */
export async function buildDebianTree(
  dir: string,
  lockFd: number,
  suite: string,
  packages: string[],
): Promise<void> {
  const debootstrap = await ensureDebianBinary("debootstrap", "debootstrap");
  await runStep(lockFd, `debootstrap ${suite} (minbase)`, debootstrap, [
    "--variant=minbase",
    suite,
    dir,
    MIRROR,
  ]);
  // Package scripts must not try to start services in a tree that has no init.
  await writeFile(join(dir, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  // apt needs /proc; mounting it in a namespace of the command's own means nothing stays mounted after.
  // The clock of a test machine may lag the archive's Valid-Until date; the packages are still signed.
  const install = [
    "apt-get -o Acquire::Check-Valid-Until=false update",
    `apt-get install -y --no-install-recommends ${packages.join(" ")}`,
    "apt-get clean",
  ].join(" && ");
  await runStep(
    lockFd,
    `apt-get install ${packages.join(" ")} in the tree`,
    "unshare",
    [
      "--mount",
      "sh",
      "-c",
      'mount -t proc proc "$1/proc" && exec chroot "$1" sh -c "$2"',
      "sh",
      dir,
      install,
    ],
    { ...chrootEnv, DEBIAN_FRONTEND: "noninteractive" },
  );
}

/** Builds the tree at `dir` (which must not exist yet) and writes its marker. */
async function build(dir: string, lockFd: number): Promise<SynapseChrootInfo> {
  await buildDebianTree(dir, lockFd, "sid", ["matrix-synapse"]);
  const version = (
    await runStep(
      lockFd,
      "checking Synapse in the chroot",
      "chroot",
      [dir, "python3", "-c", "import synapse; print(synapse.__version__)"],
      chrootEnv,
    )
  ).trim();
  const info = { recipe: RECIPE, synapseVersion: version, builtAt: new Date().toISOString() };
  // Last: only a tree with this file is complete.
  await writeFile(join(dir, MARKER), `${JSON.stringify(info)}\n`);
  return { dir, ...info };
}

const pending = new Map<string, Promise<SynapseChrootInfo>>();

/**
 * The complete tree at `dir` (default synapseChrootDir()), built first if needed. Concurrent calls in
 * this process share one build; other processes wait on the lock.
 */
export function ensureSynapseChroot(dir = synapseChrootDir()): Promise<SynapseChrootInfo> {
  let result = pending.get(dir);
  if (result === undefined) {
    result = ensure(dir).finally(() => pending.delete(dir));
    pending.set(dir, result);
  }
  return result;
}

async function ensure(dir: string): Promise<SynapseChrootInfo> {
  const ready = await readMarker(dir);
  if (ready !== undefined) return { ...ready, dir };
  if (process.getuid?.() !== 0)
    throw new PermanentError(
      "FG_SERVER_START_FAILED",
      `Synapse's chroot ${dir} is not built, and building it (debootstrap, chroot, mount) needs root`,
    );
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true });
  const held = await lock(join(parent, `.${basename(dir)}.lock`));
  try {
    // Someone else may have finished it while we waited for the lock.
    const built = await readMarker(dir);
    if (built !== undefined) return { ...built, dir };
    const started = Date.now();
    progress(
      `synapse chroot: building ${dir} (Debian sid with matrix-synapse; takes a minute or two, about 550 MB)`,
    );
    const partial = join(parent, `.${basename(dir)}.partial`);
    // Leftovers of a build that was killed, and a tree without marker or of an older recipe.
    await removeTree(partial);
    const info = await build(partial, held.fd);
    await removeTree(dir);
    await rename(partial, dir);
    progress(
      `synapse chroot: ready: Synapse ${info.synapseVersion} in ${String(Math.round((Date.now() - started) / 1000))} s`,
    );
    return { ...info, dir };
  } finally {
    await held.close();
  }
}

const invokedAs = process.argv[1];
if (invokedAs !== undefined && import.meta.url === pathToFileURL(resolve(invokedAs)).href) {
  try {
    const info = await ensureSynapseChroot();
    progress(`synapse chroot: ${info.dir}: Synapse ${info.synapseVersion}`);
  } catch (error) {
    process.stderr.write(`fedgate: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
