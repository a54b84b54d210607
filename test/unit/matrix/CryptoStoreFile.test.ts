import "fake-indexeddb/auto";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CryptoStoreFile } from "../../../bridges/matrix/crypto/CryptoStoreFile.js";
import { scratchDir } from "../../helpers/scratchDir.js";

type Db = {
  close(): void;
  transaction(n: string[], m: string): Tx;
  createObjectStore(n: string, o: unknown): Store;
};
type Tx = { objectStore(n: string): Store; oncomplete: (() => void) | null };
type Store = {
  put(v: unknown, k?: unknown): unknown;
  get(k: unknown): { onsuccess: (() => void) | null; result: unknown };
  createIndex(n: string, k: string, o: unknown): void;
  index(n: string): { unique: boolean };
};
const idb = (
  globalThis as unknown as {
    indexedDB: { open(n: string, v?: number): Req; databases(): Promise<{ name: string }[]> };
  }
).indexedDB;
type Req = { onsuccess: (() => void) | null; onupgradeneeded: (() => void) | null; result: Db };

function open(name: string, upgrade?: (db: Db) => void): Promise<Db> {
  return new Promise((resolve) => {
    const request = idb.open(name, 3);
    request.onupgradeneeded = () => upgrade?.(request.result);
    request.onsuccess = () => resolve(request.result);
  });
}

async function read(db: Db, store: string, key: unknown): Promise<unknown> {
  const request = db.transaction([store], "readonly").objectStore(store).get(key);
  return await new Promise((resolve) => (request.onsuccess = () => resolve(request.result)));
}

describe("Matrix crypto store file", () => {
  it("Matrix crypto store file - databases and device ids come back whole after the memory is gone", async () => {
    const dir = await scratchDir("crypto-store");
    const file = join(dir, "crypto.store");
    const devices = { devices: { "@fedgate:tchap.localhost": "FEDGATEA1" } };
    const db = await open("fg-test-one", (made) => {
      made.createObjectStore("inline", { keyPath: "id", autoIncrement: false }).createIndex("by", "by", {
        unique: true,
      });
      made.createObjectStore("outline", { keyPath: null, autoIncrement: false });
    });
    const tx = db.transaction(["inline", "outline"], "readwrite");
    tx.objectStore("inline").put({ id: "a", by: "x", bytes: new Uint8Array([1, 2, 3]) });
    tx.objectStore("outline").put(["v"], ["compound", 7]);
    await new Promise<void>((resolve) => (tx.oncomplete = () => resolve()));
    db.close();
    await open("other-app").then((other) => other.close());

    const store = new CryptoStoreFile(file, "fg-test-", () => devices);
    await Promise.all([store.save(), store.save(), store.save()]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await store.close();
    expect((await idb.databases()).map((d) => d.name)).not.toContain("fg-test-one");

    expect(await new CryptoStoreFile(file, "fg-test-", () => devices).restore()).toEqual(devices);
    const back = await open("fg-test-one");
    expect(await read(back, "inline", "a")).toEqual({ id: "a", by: "x", bytes: new Uint8Array([1, 2, 3]) });
    expect(await read(back, "outline", ["compound", 7])).toEqual(["v"]);
    expect(back.transaction(["inline"], "readonly").objectStore("inline").index("by").unique).toBe(true);
    back.close();
  });

  it("Matrix crypto store file - no file is a first start; a file of something else is refused", async () => {
    const dir = await scratchDir("crypto-store");
    expect(await new CryptoStoreFile(join(dir, "none"), "fg-", () => ({ devices: {} })).restore()).toBe(
      undefined,
    );
    const junk = join(dir, "junk");
    await writeFile(junk, "not a store");
    await expect(new CryptoStoreFile(junk, "fg-", () => ({ devices: {} })).restore()).rejects.toMatchObject({
      code: "FG_CONFIG_INVALID",
    });
    expect(await readFile(junk, "utf8")).toBe("not a store");
  });
});
