/**
 * Reloads the policy when its file changes. Kubernetes updates a ConfigMap volume by writing a new folder and
 * swapping the `..data` symlink to it, which changes no file the policy path names: so the file's folder is
 * watched, not the file. A burst of events (the kubelet's or an editor's several steps) waits for a quiet
 * moment, and a reload happens only when the policy's bytes differ from those last loaded.
 */
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";

/** Quiet time after the last change in the folder before the policy is read. */
const SETTLE_MS = 300;

export class PolicyFileWatcher {
  private timer: NodeJS.Timeout | undefined;
  private loaded: Promise<string | undefined>;
  private running: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly reload: () => Promise<void>,
    private readonly log: Logger,
    private readonly watcher: FSWatcher,
  ) {
    this.loaded = this.digest();
  }

  /** Watches `file`'s folder; `reload` validates and applies the policy, and throws to keep the old one. */
  static start(file: string, reload: () => Promise<void>, log: Logger): PolicyFileWatcher {
    const watcher = watch(dirname(file));
    const policyWatcher = new PolicyFileWatcher(file, reload, log, watcher);
    watcher.on("change", () => policyWatcher.changed());
    watcher.on("error", (error) => log.error({ err: error, file }, "cannot watch the policy file's folder"));
    return policyWatcher;
  }

  stop(): void {
    clearTimeout(this.timer);
    this.watcher.close();
  }

  private changed(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // One reload at a time, in the order of the changes.
      this.running = this.running.then(() => this.reloadIfChanged());
    }, SETTLE_MS);
  }

  private async reloadIfChanged(): Promise<void> {
    const digest = await this.digest();
    if (digest === undefined || digest === (await this.loaded)) return;
    this.loaded = Promise.resolve(digest);
    try {
      await this.reload();
    } catch (error) {
      this.log.error({ err: error, file: this.file }, "policy reload failed; keeping the old policy");
    }
  }

  /** The sha256 of the policy file's bytes; undefined while it cannot be read (the next change tries again). */
  private async digest(): Promise<string | undefined> {
    try {
      return createHash("sha256")
        .update(await readFile(this.file))
        .digest("hex");
    } catch (error) {
      this.log.warn({ err: error, file: this.file }, "cannot read the policy file; keeping the old policy");
      return undefined;
    }
  }
}
