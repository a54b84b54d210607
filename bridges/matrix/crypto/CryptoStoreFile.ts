/**
 * The bridge's crypto stores on disk. The Rust crypto keeps its store in IndexedDB, which Node lacks: the
 * bridge gives it fake-indexeddb's (in memory), and this file keeps a copy of those databases in one file,
 * written after every change and read back at start, so that a restart keeps the devices' identities and
 * sessions. Every value (and every key) in the databases is encrypted by the store itself with the key from
 * `bridges.matrix.encryption.storeKeyFile`; the file adds the device ids of the users they belong to.
 *
 * Writes are coalesced: a change while a write is under way is written once that one ends, and every caller
 * resumes once a write begun after its call has ended. The file is replaced whole (written aside, renamed).
 */
import "fake-indexeddb/auto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { deserialize, serialize } from "node:v8";
import { PermanentError } from "../../../schemas/contract/errors.js";

/** What the file holds besides the databases: which device each user's store is for. */
export interface StoredDevices {
  /** user id → device id. */
  devices: Record<string, string>;
}

interface Snapshot extends StoredDevices {
  /** 1 for this layout. */
  version: number;
  databases: DatabaseCopy[];
}

interface DatabaseCopy {
  name: string;
  version: number;
  stores: StoreCopy[];
}

interface StoreCopy {
  name: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  indexes: { name: string; keyPath: string | string[]; unique: boolean; multiEntry: boolean }[];
  keys: unknown[];
  values: unknown[];
}

// The few IndexedDB shapes used here: Node has no DOM typings, and fake-indexeddb's refer to them.
interface IdbRequest<T> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
  onblocked: (() => void) | null;
}
interface IdbIndex {
  name: string;
  keyPath: string | string[];
  unique: boolean;
  multiEntry: boolean;
}
interface IdbStore {
  name: string;
  keyPath: string | string[] | null;
  autoIncrement: boolean;
  indexNames: { length: number; item(index: number): string | null };
  index(name: string): IdbIndex;
  getAll(): IdbRequest<unknown[]>;
  getAllKeys(): IdbRequest<unknown[]>;
  put(value: unknown, key?: unknown): IdbRequest<unknown>;
  createIndex(
    name: string,
    keyPath: string | string[],
    options: { unique: boolean; multiEntry: boolean },
  ): void;
}
interface IdbTransaction {
  objectStore(name: string): IdbStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  error: unknown;
}
interface IdbDatabase {
  name: string;
  version: number;
  objectStoreNames: { length: number; item(index: number): string | null };
  transaction(names: string[], mode: "readonly" | "readwrite"): IdbTransaction;
  createObjectStore(
    name: string,
    options: { keyPath: string | string[] | null; autoIncrement: boolean },
  ): IdbStore;
  close(): void;
}
interface IdbFactory {
  databases(): Promise<{ name?: string; version?: number }[]>;
  open(name: string, version?: number): IdbOpenRequest;
  deleteDatabase(name: string): IdbRequest<undefined> & { onblocked: (() => void) | null };
}

function factory(): IdbFactory {
  return (globalThis as unknown as { indexedDB: IdbFactory }).indexedDB;
}

/** IndexedDB's errors are DOMExceptions, which Node's may not be. */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function done<T>(request: IdbRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(asError(request.error));
  });
}

function committed(transaction: IdbTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(asError(transaction.error));
    transaction.onabort = () => reject(asError(transaction.error));
  });
}

function names(list: { length: number; item(index: number): string | null }): string[] {
  const result: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const name = list.item(i);
    if (name !== null) result.push(name);
  }
  return result;
}

async function openDatabase(
  name: string,
  version?: number,
  upgrade?: (db: IdbDatabase) => void,
): Promise<IdbDatabase> {
  const request = factory().open(name, version);
  request.onupgradeneeded = () => upgrade?.(request.result);
  return await done(request);
}

async function copyDatabase(name: string): Promise<DatabaseCopy> {
  const db = await openDatabase(name);
  try {
    const storeNames = names(db.objectStoreNames);
    const stores: StoreCopy[] = [];
    if (storeNames.length > 0) {
      // One transaction over every store: the copy is the database at one moment.
      const transaction = db.transaction(storeNames, "readonly");
      for (const storeName of storeNames) {
        const store = transaction.objectStore(storeName);
        const [keys, values] = await Promise.all([done(store.getAllKeys()), done(store.getAll())]);
        stores.push({
          name: storeName,
          keyPath: store.keyPath,
          autoIncrement: store.autoIncrement,
          indexes: names(store.indexNames).map((indexName) => {
            const { keyPath, unique, multiEntry } = store.index(indexName);
            return { name: indexName, keyPath, unique, multiEntry };
          }),
          keys,
          values,
        });
      }
      await committed(transaction);
    }
    return { name, version: db.version, stores };
  } finally {
    db.close();
  }
}

async function deleteDatabase(name: string): Promise<void> {
  const request = factory().deleteDatabase(name);
  await done(request);
}

async function restoreDatabase(copy: DatabaseCopy): Promise<void> {
  await deleteDatabase(copy.name);
  const db = await openDatabase(copy.name, copy.version, (created) => {
    for (const store of copy.stores) {
      const made = created.createObjectStore(store.name, {
        keyPath: store.keyPath,
        autoIncrement: store.autoIncrement,
      });
      for (const index of store.indexes)
        made.createIndex(index.name, index.keyPath, { unique: index.unique, multiEntry: index.multiEntry });
    }
  });
  try {
    if (copy.stores.length === 0) return;
    const transaction = db.transaction(
      copy.stores.map((store) => store.name),
      "readwrite",
    );
    for (const store of copy.stores) {
      const target = transaction.objectStore(store.name);
      store.values.forEach((value, i) => {
        // A store with a key path finds the key in the value; giving it as well is an error.
        if (store.keyPath === null) target.put(value, store.keys[i]);
        else target.put(value);
      });
    }
    await committed(transaction);
  } finally {
    db.close();
  }
}

export class CryptoStoreFile {
  private writing: Promise<void> | undefined;
  private again: Promise<void> | undefined;

  /** `file`: where the copy lives; `prefix`: the name every database of the bridge's stores begins with. */
  constructor(
    private readonly file: string,
    private readonly prefix: string,
    private readonly devices: () => StoredDevices,
  ) {}

  /**
   * Puts the file's databases back in place of any of the same names; returns its device ids, or undefined
   * when there is no file yet. FG_CONFIG_INVALID for a file that is not one of these.
   */
  async restore(): Promise<StoredDevices | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.file);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new PermanentError("FG_CONFIG_UNREADABLE", `the crypto store ${this.file} cannot be read`, {
        cause,
      });
    }
    let snapshot: Snapshot;
    try {
      snapshot = deserialize(bytes) as Snapshot;
      if (snapshot.version !== 1 || !Array.isArray(snapshot.databases)) throw new Error("unknown format");
    } catch (cause) {
      throw new PermanentError("FG_CONFIG_INVALID", `${this.file} is not a fedgate crypto store`, { cause });
    }
    for (const database of snapshot.databases)
      if (database.name.startsWith(this.prefix)) await restoreDatabase(database);
    return { devices: snapshot.devices };
  }

  /** Writes the databases to the file; resolves once a write begun after this call has ended. */
  save(): Promise<void> {
    if (this.writing === undefined) {
      this.writing = this.write().finally(() => {
        this.writing = undefined;
      });
      return this.writing;
    }
    // A write is under way, with what it read before this change: one more after it, shared by all.
    this.again ??= this.writing
      .catch(() => undefined)
      .then(() => {
        this.again = undefined;
        return this.save();
      });
    return this.again;
  }

  /** Lets go of the databases in memory, once written: what is in the file is what the next start gets. */
  async close(): Promise<void> {
    await this.save();
    for (const name of await this.databaseNames()) await deleteDatabase(name);
  }

  private async databaseNames(): Promise<string[]> {
    return (await factory().databases())
      .map((database) => database.name ?? "")
      .filter((name) => name.startsWith(this.prefix));
  }

  private async write(): Promise<void> {
    const databases: DatabaseCopy[] = [];
    for (const name of await this.databaseNames()) databases.push(await copyDatabase(name));
    const snapshot: Snapshot = { version: 1, ...this.devices(), databases };
    const aside = `${this.file}.${String(process.pid)}.tmp`;
    await writeFile(aside, serialize(snapshot), { mode: 0o600 });
    await rename(aside, this.file);
  }
}
