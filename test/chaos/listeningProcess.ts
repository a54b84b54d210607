/**
 * The process listening on a loopback TCP port, found through /proc: how a fault reaches a server whose
 * launcher keeps its child process to itself (LocalNatsServer), to kill it as a crash would.
 */
import { readdir, readFile, readlink } from "node:fs/promises";

/** The inode of the socket listening on 127.0.0.1:port (or any address), from /proc/net/tcp. */
async function listeningSocketInode(port: number): Promise<string | undefined> {
  const table = await readFile("/proc/net/tcp", "utf8");
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    const [, local, , state, , , , , , inode] = fields;
    // State 0A is LISTEN.
    if (local?.endsWith(`:${hexPort}`) === true && state === "0A" && inode !== undefined) return inode;
  }
  return undefined;
}

/** The pid of the process that listens on `port`; fails if none does. */
export async function processListeningOn(port: number): Promise<number> {
  const inode = await listeningSocketInode(port);
  if (inode === undefined) throw new Error(`nothing listens on port ${port}`);
  const target = `socket:[${inode}]`;
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      const link = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => "");
      if (link === target) return Number(entry);
    }
  }
  throw new Error(`no process holds the socket listening on port ${port}`);
}

/** Resolves once process `pid` is gone (or a zombie, reaped by its parent later). */
export async function processGone(pid: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
    if (status === undefined || /^State:\s+Z/m.test(status)) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} still runs after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
