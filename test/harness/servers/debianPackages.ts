/**
 * Finds a server binary from Debian's packages, installing the package when it is missing and we are root,
 * so `fedgate demo` and the tests work on a fresh Debian machine.
 */
import { spawn } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { PermanentError } from "../../../schemas/contract/errors.js";

/** The path of `binary` on PATH or in the system folders; undefined if none. */
export async function findOnPath(binary: string): Promise<string | undefined> {
  const dirs = [...(process.env["PATH"] ?? "").split(delimiter), "/usr/sbin", "/usr/bin", "/sbin"];
  for (const dir of dirs) {
    const candidate = join(dir, binary);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "inherit", "inherit"], env });
    child.on("error", reject);
    child.on("exit", (code) => resolve(code ?? 1));
  });
}

/** The path of `binary`, installing Debian package `pkg` first if needed. */
export async function ensureDebianBinary(binary: string, pkg: string): Promise<string> {
  const found = await findOnPath(binary);
  if (found !== undefined) return found;
  if (process.getuid?.() !== 0) {
    throw new PermanentError(
      "FG_SERVER_START_FAILED",
      `${binary} is not installed; install it with: sudo apt-get install -y ${pkg}`,
    );
  }
  process.stderr.write(`fedgate: installing Debian package ${pkg} (apt-get)…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if ((await run("apt-get", ["install", "-y", "--no-install-recommends", pkg], env)) !== 0) {
    await run("apt-get", ["update"], env);
    if ((await run("apt-get", ["install", "-y", "--no-install-recommends", pkg], env)) !== 0) {
      throw new PermanentError("FG_SERVER_START_FAILED", `apt-get could not install ${pkg}`);
    }
  }
  const installed = await findOnPath(binary);
  if (installed === undefined)
    throw new PermanentError("FG_SERVER_START_FAILED", `${pkg} installed no ${binary}`);
  return installed;
}
