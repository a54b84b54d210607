/** KeyValueStore on a Map, for unit tests; with ttlMs, entries expire as in a JetStream KV bucket with a TTL. */
import { KeyExistsError, type KeyValueStore, type KvEntry, type KvWatch } from "./KeyValueStore.js";
import { subjectMatches } from "./subjectMatches.js";

interface Stored {
  entry: KvEntry;
  expiresAt: number;
}

export class MemoryKeyValue implements KeyValueStore {
  private readonly entries = new Map<string, Stored>();
  private readonly watchers = new Set<(entry: KvEntry) => void>();
  private revision = 0;

  constructor(
    private readonly ttlMs = 0,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): Promise<KvEntry | undefined> {
    return Promise.resolve(this.live(key)?.entry);
  }

  put(key: string, value: Uint8Array): Promise<number> {
    return Promise.resolve(this.write({ key, value, revision: ++this.revision, operation: "PUT" }));
  }

  create(key: string, value: Uint8Array): Promise<number> {
    if (this.live(key) !== undefined) return Promise.reject(new KeyExistsError(key));
    return this.put(key, value);
  }

  update(key: string, value: Uint8Array, revision: number): Promise<number> {
    if (this.live(key)?.entry.revision !== revision) return Promise.reject(new KeyExistsError(key));
    return this.put(key, value);
  }

  delete(key: string): Promise<void> {
    this.write({ key, value: new Uint8Array(), revision: ++this.revision, operation: "DEL" });
    return Promise.resolve();
  }

  keys(filter = ">"): Promise<string[]> {
    return Promise.resolve(
      [...this.entries.keys()].filter((k) => this.live(k) !== undefined && subjectMatches(filter, k)),
    );
  }

  watch(onEntry: (entry: KvEntry) => void): Promise<KvWatch> {
    for (const key of [...this.entries.keys()]) {
      const stored = this.live(key);
      if (stored !== undefined) onEntry(stored.entry);
    }
    this.watchers.add(onEntry);
    return Promise.resolve({ stop: () => this.watchers.delete(onEntry) });
  }

  private live(key: string): Stored | undefined {
    const stored = this.entries.get(key);
    if (stored !== undefined && this.ttlMs > 0 && stored.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return stored;
  }

  private write(entry: KvEntry): number {
    if (entry.operation === "DEL") this.entries.delete(entry.key);
    else this.entries.set(entry.key, { entry, expiresAt: this.now() + this.ttlMs });
    for (const watcher of this.watchers) watcher(entry);
    return entry.revision;
  }
}
