/** A key-value bucket: JetStream KV in production, a Map in unit tests. Keys use [A-Za-z0-9_=.-]. */
import { createHash } from "node:crypto";

export interface KvEntry {
  key: string;
  value: Uint8Array;
  revision: number;
  operation: "PUT" | "DEL";
}

export interface KvWatch {
  stop(): void;
}

export interface KeyValueStore {
  get(key: string): Promise<KvEntry | undefined>;
  /** Writes unconditionally; resolves with the new revision once stored. */
  put(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key does not exist; rejects with KeyExistsError otherwise. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes only if the key is still at `revision`; rejects with KeyExistsError otherwise (someone else wrote). */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
  delete(key: string): Promise<void>;
  /** Keys matching a subject-style filter ("link.>"); all keys when omitted. */
  keys(filter?: string): Promise<string[]>;
  /**
   * Replays the current value of every key into onEntry, then every later change, until stopped. Resolves
   * once the replay is complete. Keeps in-memory indexes in step with the bucket on every replica.
   */
  watch(onEntry: (entry: KvEntry) => void): Promise<KvWatch>;
}

/** create() found the key already there. */
export class KeyExistsError extends Error {
  constructor(readonly key: string) {
    super(`key ${key} already exists`);
    this.name = "KeyExistsError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson(bytes: Uint8Array): unknown {
  return JSON.parse(decoder.decode(bytes)) as unknown;
}

/** Longest token kept readable; NATS puts a key in a subject, and a too-long control line closes the connection. */
const MAX_TOKEN_LENGTH = 160;

/**
 * Any string as one key token: base64url has only key-safe characters and no dots. A string whose token would
 * be longer than MAX_TOKEN_LENGTH (native ids are hostile input) is kept as "=" and its SHA-256: "=" never
 * occurs in unpadded base64url, so the two forms cannot collide, and every key stays bounded.
 */
export function keyToken(text: string): string {
  const token = Buffer.from(text, "utf8").toString("base64url");
  if (token.length > MAX_TOKEN_LENGTH)
    return `=${createHash("sha256").update(text, "utf8").digest("base64url")}`;
  return token || "_";
}
