/**
 * What every local server fedgate starts for its tests and demo needs (nats-server, Prosody, ejabberd):
 * free loopback ports, a check that a port accepts, a command run to its end, and the server's log read
 * from where this start began.
 */
import { readFile, rm, stat } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { PermanentError } from "../../../schemas/contract/errors.js";
export { runCommand } from "./hostServer.js";
import { serverRuntime, type ServerCommand, type ServerHandle } from "./serverRuntime.js";

/** Binds `port` (0: any) on 127.0.0.1 and lets it go again; the port bound, or undefined if it was taken. */
function tryPort(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE" || error.code === "EACCES") resolve(undefined);
      else reject(error);
    });
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

/** Where the range the kernel picks outgoing connections' local ports from begins (Linux's default elsewhere). */
async function ephemeralPortsFrom(): Promise<number> {
  try {
    const low = Number(
      (await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8")).trim().split(/\s+/)[0],
    );
    if (Number.isInteger(low) && low > 0) return low;
  } catch {
    // Not Linux: its default will do.
  }
  return 32768;
}

/** Below this, ports are left to well-known and registered services. */
const LOWEST_CHOSEN_PORT = 10_000;

/**
 * A free loopback port for a server that starts a while later (Synapse is told its AS's port before the
 * bridge listens). Chosen below the range outgoing connections take their local ports from: a port from
 * that range, free now, can be taken by any connection meanwhile. Falls back to any free port.
 */
export async function freePort(): Promise<number> {
  const low = await ephemeralPortsFrom();
  if (low > LOWEST_CHOSEN_PORT + 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const candidate = LOWEST_CHOSEN_PORT + Math.floor(Math.random() * (low - LOWEST_CHOSEN_PORT));
      const port = await tryPort(candidate);
      if (port !== undefined) return port;
    }
  }
  const port = await tryPort(0);
  if (port === undefined) throw new Error("no free port");
  return port;
}

/** `count` different free ports (a port just freed can be handed out twice). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** A server's log file, which may not exist yet. */
export class ServerLog {
  constructor(readonly file: string) {}

  /** Where the log ends now: what a start writes comes after. */
  async size(): Promise<number> {
    try {
      return (await stat(this.file)).size;
    } catch {
      return 0;
    }
  }

  async since(offset: number): Promise<string> {
    try {
      return (await readFile(this.file)).subarray(offset).toString("utf8");
    } catch {
      return "";
    }
  }

  /** The last lines, for an error that says why a server did not start. */
  async tail(lines = 40): Promise<string> {
    try {
      return (await readFile(this.file, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }
}

/**
 * A server launched by its runtime (serverRuntime.ts): what it printed before its own log took over, and
 * why it exited, if it did.
 */
export class ServerChild {
  private printed = "";
  private exited: string | undefined;

  constructor(
    private readonly name: string,
    readonly handle: ServerHandle,
  ) {
    handle.onOutput((text) => (this.printed += text));
    void handle.exited.then((reason) => (this.exited = reason));
  }

  /** Starts `command` where FEDGATE_SERVERS says servers run. */
  static async start(name: string, command: ServerCommand): Promise<ServerChild> {
    return new ServerChild(name, await (await serverRuntime()).start(name, command));
  }

  /** Asks the server to stop (SIGTERM), kills it after `timeoutMs`; resolves once it has exited. */
  stop(timeoutMs: number): Promise<void> {
    return this.handle.stop(timeoutMs);
  }

  /** Why the process ended; undefined while it runs. */
  get exitReason(): string | undefined {
    return this.exited;
  }

  /** The error for a start that failed: the reason, what the server printed, and its log's last lines. */
  async startFailure(reason: string, log: ServerLog, dir: string): Promise<PermanentError> {
    return new PermanentError(
      "FG_SERVER_START_FAILED",
      `${this.name}: ${reason}\n${this.printed.trim()}\n--- ${log.file} (tail) ---\n${await log.tail()}`,
      { detail: { dir } },
    );
  }
}

/**
 * The life cycle every local server shares: one folder of config and data, a child process that each kind
 * launches in its own way, a restart that keeps the folder (as after an operator's restart in the middle
 * of a conversation), and a stop that removes the folder when the server made it.
 */
export abstract class LocalServerProcess {
  protected child: ServerChild | undefined;
  protected readonly log: ServerLog;

  protected constructor(
    /** Config, data and log. */
    readonly dir: string,
    /** Whether the folder is this server's own, made for it and removed with it. */
    protected readonly ownsDir: boolean,
    readonly logFile: string,
    private readonly stopTimeoutMs: number,
  ) {
    this.log = new ServerLog(logFile);
  }

  /** Starts the server process; resolves once it serves. */
  protected abstract launch(): Promise<void>;

  /** Writes the folder's files and launches; a first start that fails removes the folder it made. */
  protected async firstLaunch(prepare: () => Promise<void>): Promise<void> {
    try {
      await prepare();
      await this.launch();
    } catch (error) {
      if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Waits for the child just launched to serve. `check` sees the log the server wrote since `logStart`
   * (read after its exit, if any, was seen, so that the log has everything up to it) and the child's exit
   * reason, and returns true once the server serves, a failure, or undefined to look again. A failure, or no
   * answer within `timeoutMs` (`timedOut` then says why), stops the process and throws
   * FG_SERVER_START_FAILED with what the server printed and its log's tail.
   */
  protected async awaitServing(
    child: ServerChild,
    logStart: number,
    options: {
      timeoutMs: number;
      pollMs: number;
      timedOut: string;
      check: (log: string, exit: string | undefined) => Promise<true | string | undefined>;
    },
  ): Promise<void> {
    const deadline = Date.now() + options.timeoutMs;
    let failure: string | undefined;
    while (failure === undefined) {
      const exit = child.exitReason;
      const outcome = await options.check(await this.log.since(logStart), exit);
      if (outcome === true) return;
      failure = outcome ?? (Date.now() > deadline ? options.timedOut : undefined);
      if (failure === undefined) await new Promise((resolve) => setTimeout(resolve, options.pollMs));
    }
    await this.stopProcess();
    throw await child.startFailure(failure, this.log, this.dir);
  }

  /** Stops the server process, if it runs; a server that does not stop in time is killed. */
  protected stopProcess(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    return child === undefined ? Promise.resolve() : child.stop(this.stopTimeoutMs);
  }

  /**
   * Stops and starts again on the same ports with the same data: what the server stored remains.
   * `whileDown` runs in between, for what must happen while the server is away.
   */
  async restart(whileDown?: () => Promise<void>): Promise<void> {
    await this.stopProcess();
    await whileDown?.();
    await this.launch();
  }

  /**
   * Sends the server `signal`: SIGSTOP freezes it with its connections open (the kernel still accepts and
   * buffers on them), SIGCONT thaws it.
   */
  async signal(signal: "SIGSTOP" | "SIGCONT"): Promise<void> {
    await this.child?.handle.signal(signal);
  }

  async stop(): Promise<void> {
    // A frozen server would not stop in time.
    await this.signal("SIGCONT");
    await this.stopProcess();
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }
}
