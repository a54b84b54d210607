/** KeyValueStore on a Map, for unit tests. */
import { subjectMatches } from "./subjectMatches.js";
import { KeyExistsError, type KeyValueStore, type KvEntry, type KvWatch } from "../stores/KeyValueStore.js";

export class MemoryKeyValue implements KeyValueStore {
  private readonly entries = new Map<string, KvEntry>();
  private readonly watchers = new Set<(entry: KvEntry) => void>();
  private revision = 0;

  get(key: string): Promise<KvEntry | undefined> {
    return Promise.resolve(this.entries.get(key));
  }

  put(key: string, value: Uint8Array): Promise<number> {
    return Promise.resolve(this.write({ key, value, revision: ++this.revision, operation: "PUT" }));
  }

  create(key: string, value: Uint8Array): Promise<number> {
    if (this.entries.has(key)) return Promise.reject(new KeyExistsError(key));
    return this.put(key, value);
  }

  delete(key: string): Promise<void> {
    this.write({ key, value: new Uint8Array(), revision: ++this.revision, operation: "DEL" });
    return Promise.resolve();
  }

  keys(filter = ">"): Promise<string[]> {
    return Promise.resolve([...this.entries.keys()].filter((k) => subjectMatches(filter, k)));
  }

  watch(onEntry: (entry: KvEntry) => void, onReady: () => void): Promise<KvWatch> {
    for (const entry of this.entries.values()) onEntry(entry);
    onReady();
    this.watchers.add(onEntry);
    return Promise.resolve({ stop: () => this.watchers.delete(onEntry) });
  }

  private write(entry: KvEntry): number {
    if (entry.operation === "DEL") this.entries.delete(entry.key);
    else this.entries.set(entry.key, entry);
    for (const watcher of this.watchers) watcher(entry);
    return entry.revision;
  }
}
