/**
 * A nats-server with JetStream on a free 127.0.0.1 port and a store in a temporary folder: for the demo
 * and the tests. stop() shuts it down and removes the store; kill() simulates a crash.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { freePort } from "./serverProcess.js";
import { serverRuntime, type ServerHandle } from "./serverRuntime.js";

const START_TIMEOUT_MS = 15_000;
/** A JetStream store flushes on SIGTERM; a server that has not stopped by then is killed. */
const STOP_TIMEOUT_MS = 15_000;

/**
 * The folders of the files a config names by absolute path (leafnode TLS keys and certificates), which a
 * container must see where the config says. The root folder is never one: a path there is not ours.
 */
export async function foldersNamedIn(config: string): Promise<string[]> {
  const folders = new Set<string>();
  for (const [, path] of config.matchAll(/"(\/[^"\n]+)"/g)) {
    const folder = dirname(path ?? "/");
    if (folder === "/" || folders.has(folder)) continue;
    if (
      await stat(folder).then(
        (found) => found.isDirectory(),
        () => false,
      )
    )
      folders.add(folder);
  }
  return [...folders];
}

export class LocalNatsServer {
  private constructor(
    private child: ServerHandle,
    readonly port: number,
    readonly storeDir: string,
    private readonly ownsStore: boolean,
    /** A config file of accounts and leafnodes (federation), read before the command line's settings. */
    private readonly configFile: string | undefined,
    /** Folders the config's files are in, besides the store. */
    private readonly configFolders: string[],
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /**
   * Starts nats-server; storeDir defaults to a new temporary folder that stop() removes. `config` is
   * config text (accounts, leafnodes: see federationServerConfig), kept next to the store.
   */
  static async start(
    options: { storeDir?: string; port?: number; config?: string } = {},
  ): Promise<LocalNatsServer> {
    // Absolute: a container sees the store at the same path.
    const storeDir = resolve(options.storeDir ?? (await mkdtemp(join(tmpdir(), "fedgate-nats-"))));
    const port = options.port ?? (await freePort());
    let configFile: string | undefined;
    let configFolders: string[] = [];
    if (options.config !== undefined) {
      configFolders = await foldersNamedIn(options.config);
      configFile = join(storeDir, "nats-server.conf");
      await mkdir(storeDir, { recursive: true });
      await writeFile(configFile, options.config, { mode: 0o600 });
    }
    const server = new LocalNatsServer(
      await LocalNatsServer.spawn(port, storeDir, configFile, configFolders),
      port,
      storeDir,
      options.storeDir === undefined,
      configFile,
      configFolders,
    );
    return server;
  }

  /** Starts nats-server where FEDGATE_SERVERS says; resolves once it says it is ready. */
  private static async spawn(
    port: number,
    storeDir: string,
    configFile: string | undefined,
    configFolders: string[],
  ): Promise<ServerHandle> {
    const child = await (
      await serverRuntime()
    ).start("nats-server", {
      package: "nats-server",
      binary: "nats-server",
      args: [
        ...(configFile === undefined ? [] : ["-c", configFile]),
        ...["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir],
      ],
      folders: [storeDir, ...configFolders],
    });
    let log = "";
    const ready = new Promise<void>((resolve) =>
      child.onOutput((text) => {
        log += text;
        if (log.includes("Server is ready")) resolve();
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const failure = await Promise.race([
      ready.then(() => undefined),
      child.exited,
      new Promise<string>((resolve) => {
        timer = setTimeout(
          () => resolve(`nats-server did not start in ${START_TIMEOUT_MS / 1000} s`),
          START_TIMEOUT_MS,
        );
      }),
    ]);
    clearTimeout(timer);
    if (failure === undefined) return child;
    await child.stop(0, "SIGKILL");
    throw new PermanentError("FG_SERVER_START_FAILED", `${failure}:\n${log}`);
  }

  /**
   * Restarts on the same port and store, as after an upgrade, or after a crash with `signal` SIGKILL.
   * `whileDown` runs in between, for what must happen while NATS is away.
   */
  async restart(whileDown?: () => Promise<void>, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.stopProcess(signal);
    await whileDown?.();
    this.child = await LocalNatsServer.spawn(this.port, this.storeDir, this.configFile, this.configFolders);
  }

  /** Sends the server `signal`: SIGSTOP freezes it with its connections open, SIGCONT thaws it. */
  signal(signal: "SIGSTOP" | "SIGCONT"): Promise<void> {
    return this.child.signal(signal);
  }

  async stop(): Promise<void> {
    await this.stopProcess("SIGTERM");
    if (this.ownsStore) await rm(this.storeDir, { recursive: true, force: true });
  }

  private stopProcess(signal: NodeJS.Signals): Promise<void> {
    return this.child.stop(STOP_TIMEOUT_MS, signal);
  }
}
