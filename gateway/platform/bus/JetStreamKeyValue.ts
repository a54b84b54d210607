/** KeyValueStore on a JetStream KV bucket. */
import type { KV, KvEntry as NatsKvEntry } from "@nats-io/kv";
import { TransientError } from "../../../schemas/contract/errors.js";
import { KeyExistsError, type KeyValueStore, type KvEntry, type KvWatch } from "./KeyValueStore.js";

export class JetStreamKeyValue implements KeyValueStore {
  constructor(private readonly kv: KV) {}

  async get(key: string): Promise<KvEntry | undefined> {
    const entry = await this.call(`read ${key}`, () => this.kv.get(key));
    return entry === null || entry.operation !== "PUT" ? undefined : toEntry(entry);
  }

  put(key: string, value: Uint8Array): Promise<number> {
    return this.call(`write ${key}`, () => this.kv.put(key, value));
  }

  async create(key: string, value: Uint8Array): Promise<number> {
    try {
      return await this.kv.create(key, value);
    } catch (cause) {
      if ((await this.get(key)) !== undefined) throw new KeyExistsError(key);
      throw new TransientError("FG_STORE_FAILED", `cannot create ${key}`, { cause });
    }
  }

  async update(key: string, value: Uint8Array, revision: number): Promise<number> {
    try {
      return await this.kv.update(key, value, revision);
    } catch (cause) {
      const current = await this.kv.get(key).catch(() => null);
      if (current !== null && current.revision !== revision) throw new KeyExistsError(key);
      throw new TransientError("FG_STORE_FAILED", `cannot update ${key}`, { cause });
    }
  }

  delete(key: string): Promise<void> {
    return this.call(`delete ${key}`, () => this.kv.delete(key));
  }

  async keys(filter = ">"): Promise<string[]> {
    return this.call("list keys", async () => {
      // A key written again while the listing runs comes up again (the listing follows the bucket's stream):
      // the core counts live replicas by their heartbeat keys, and counted three of two.
      const found = new Set<string>();
      for await (const key of await this.kv.keys(filter)) found.add(key);
      return [...found];
    });
  }

  async watch(onEntry: (entry: KvEntry) => void): Promise<KvWatch> {
    // The replay of current values ends at the entry whose delta (entries still pending) is 0;
    // an empty bucket replays nothing, so it is complete at once.
    let replayed!: () => void;
    const complete = new Promise<void>((resolve) => (replayed = resolve));
    const status = await this.call("read bucket status", () => this.kv.status());
    const iterator = await this.call("watch", () => this.kv.watch({ key: ">" }));
    if (status.values === 0) replayed();
    void (async () => {
      for await (const entry of iterator) {
        onEntry(toEntry(entry));
        if (entry.isUpdate || entry.delta === 0) replayed();
      }
    })();
    await complete;
    return { stop: () => iterator.stop() };
  }

  private async call<T>(what: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (cause) {
      throw new TransientError("FG_STORE_FAILED", `key-value store: cannot ${what}`, { cause });
    }
  }
}

function toEntry(entry: NatsKvEntry): KvEntry {
  return {
    key: entry.key,
    value: entry.value,
    revision: entry.revision,
    operation: entry.operation === "PUT" ? "PUT" : "DEL",
  };
}
