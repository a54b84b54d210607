/**
 * A nats-server with JetStream on a free 127.0.0.1 port and a store in a temporary folder: for the demo
 * and the tests. stop() shuts it down and removes the store; kill() simulates a crash.
 */
import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { ensureDebianBinary } from "./debianPackages.js";
import { freePort, spawnServer } from "./serverProcess.js";

export class LocalNatsServer {
  private constructor(
    private child: ChildProcess,
    readonly port: number,
    readonly storeDir: string,
    private readonly binary: string,
    private readonly ownsStore: boolean,
    /** A config file of accounts and leafnodes (federation), read before the command line's settings. */
    private readonly configFile: string | undefined,
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
    const binary = await ensureDebianBinary("nats-server", "nats-server");
    const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), "fedgate-nats-")));
    const port = options.port ?? (await freePort());
    let configFile: string | undefined;
    if (options.config !== undefined) {
      configFile = join(storeDir, "nats-server.conf");
      await mkdir(storeDir, { recursive: true });
      await writeFile(configFile, options.config, { mode: 0o600 });
    }
    const server = new LocalNatsServer(
      await LocalNatsServer.spawn(binary, port, storeDir, configFile),
      port,
      storeDir,
      binary,
      options.storeDir === undefined,
      configFile,
    );
    return server;
  }

  private static spawn(
    binary: string,
    port: number,
    storeDir: string,
    configFile: string | undefined,
  ): Promise<ChildProcess> {
    return new Promise((resolve, reject) => {
      const child = spawnServer(
        binary,
        [
          ...(configFile === undefined ? [] : ["-c", configFile]),
          ...["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir],
        ],
        ["ignore", "ignore", "pipe"],
      );
      let log = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new PermanentError("FG_SERVER_START_FAILED", `nats-server did not start in 15 s:\n${log}`));
      }, 15_000);
      child.stderr?.on("data", (chunk: Buffer) => {
        log += chunk.toString();
        if (log.includes("Server is ready")) {
          clearTimeout(timer);
          resolve(child);
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new PermanentError("FG_SERVER_START_FAILED", `nats-server exited with ${code}:\n${log}`));
      });
    });
  }

  /**
   * Restarts on the same port and store, as after an upgrade, or after a crash with `signal` SIGKILL.
   * `whileDown` runs in between, for what must happen while NATS is away.
   */
  async restart(whileDown?: () => Promise<void>, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.stopProcess(signal);
    await whileDown?.();
    this.child = await LocalNatsServer.spawn(this.binary, this.port, this.storeDir, this.configFile);
  }

  /** Sends the server `signal`: SIGSTOP freezes it with its connections open, SIGCONT thaws it. */
  signal(signal: "SIGSTOP" | "SIGCONT"): void {
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    await this.stopProcess("SIGTERM");
    if (this.ownsStore) await rm(this.storeDir, { recursive: true, force: true });
  }

  private stopProcess(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.removeAllListeners("exit");
      this.child.once("exit", () => resolve());
      this.child.kill(signal);
    });
  }
}
