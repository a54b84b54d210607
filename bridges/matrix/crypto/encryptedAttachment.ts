/**
 * Encrypted attachments as the Matrix client-server API defines them ("Sending encrypted attachments"): the
 * file is AES-256-CTR encrypted with a fresh key and counter, the ciphertext uploaded, and the event carries
 * `file` ({url, key as a JWK, iv, hashes.sha256 of the ciphertext, v: "v2"}) instead of `url`. The event is
 * itself encrypted, so the key travels only to the room's devices. CTR has no integrity of its own: the
 * ciphertext's SHA-256 is checked before a byte is decrypted.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { isRecord } from "../../kit/isRecord.js";

/** The key, counter and ciphertext hash of one encrypted file. */
export interface AttachmentKeys {
  /** 32 bytes. */
  key: Buffer;
  /** 16 bytes: the initial counter block. */
  iv: Buffer;
  /** SHA-256 of the ciphertext, 32 bytes. */
  sha256: Buffer;
}

/** The `file` object of an event (EncryptedFile in the spec). */
export interface EncryptedFile {
  url: string;
  key: { kty: "oct"; key_ops: string[]; alg: "A256CTR"; k: string; ext: true };
  iv: string;
  hashes: { sha256: string };
  v: "v2";
}

const MXC = /^mxc:\/\/[^/]{1,255}\/[^/]{1,255}$/;
/** 32 bytes in base64url, unpadded as the spec writes it (a padded one is taken too). */
const JWK_KEY = /^[A-Za-z0-9_-]{43}=?$/;
/** 16 bytes in unpadded base64 (padding taken too). */
const IV = /^[A-Za-z0-9+/]{22}(==)?$/;
/** 32 bytes in unpadded base64 (padding taken too). */
const SHA256 = /^[A-Za-z0-9+/]{43}=?$/;

function invalid(reason: string, message: string): PermanentError {
  return new PermanentError("FG_ATTACHMENT_INVALID", `encrypted attachment: ${message}`, {
    detail: { reason },
  });
}

/** Unpadded base64, as the spec writes iv and hashes. */
function unpadded(bytes: Buffer): string {
  return bytes.toString("base64").replace(/=+$/, "");
}

function ctr(key: Buffer, iv: Buffer, bytes: Buffer, decrypt: boolean): Buffer {
  const cipher = decrypt ? createDecipheriv("aes-256-ctr", key, iv) : createCipheriv("aes-256-ctr", key, iv);
  return Buffer.concat([cipher.update(bytes), cipher.final()]);
}

/**
 * Encrypts a file with a fresh key and counter. The counter's low 64 bits start at zero, as the spec asks,
 * so that no file large enough to wrap them could repeat a block of key stream.
 */
export function encryptAttachment(plaintext: Buffer): { ciphertext: Buffer; keys: AttachmentKeys } {
  const key = randomBytes(32);
  const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
  const ciphertext = ctr(key, iv, plaintext, false);
  return { ciphertext, keys: { key, iv, sha256: createHash("sha256").update(ciphertext).digest() } };
}

/** The `file` object for ciphertext uploaded at `url`. */
export function encryptedFile(url: string, keys: AttachmentKeys): EncryptedFile {
  return {
    url,
    key: {
      kty: "oct",
      key_ops: ["encrypt", "decrypt"],
      alg: "A256CTR",
      k: keys.key.toString("base64url"),
      ext: true,
    },
    iv: unpadded(keys.iv),
    hashes: { sha256: unpadded(keys.sha256) },
    v: "v2",
  };
}

/**
 * An event's `file` object, checked: its mxc URL and its keys, every field of the expected form and length.
 * FG_ATTACHMENT_INVALID for anything else (v1's counter, another algorithm, a key of the wrong size).
 */
export function readEncryptedFile(value: unknown): { url: string; keys: AttachmentKeys } {
  if (!isRecord(value)) throw invalid("file-invalid", "the file is not an object");
  const { url, key, iv, hashes, v } = value;
  if (v !== "v2") throw invalid("version-unsupported", "only version v2 is read");
  if (typeof url !== "string" || !MXC.test(url)) throw invalid("url-invalid", "the file has no mxc:// url");
  if (!isRecord(key) || key["kty"] !== "oct" || key["alg"] !== "A256CTR")
    throw invalid("key-invalid", "the key is not an A256CTR JWK");
  const ops = key["key_ops"];
  if (!Array.isArray(ops) || !ops.includes("decrypt"))
    throw invalid("key-invalid", "the key is not for decryption");
  const k = key["k"];
  if (typeof k !== "string" || !JWK_KEY.test(k)) throw invalid("key-invalid", "the key is not 32 bytes");
  if (typeof iv !== "string" || !IV.test(iv)) throw invalid("iv-invalid", "the iv is not 16 bytes");
  const sha256 = isRecord(hashes) ? hashes["sha256"] : undefined;
  if (typeof sha256 !== "string" || !SHA256.test(sha256))
    throw invalid("hash-invalid", "the file has no SHA-256 of 32 bytes");
  return {
    url,
    keys: {
      key: Buffer.from(k, "base64url"),
      iv: Buffer.from(iv, "base64"),
      sha256: Buffer.from(sha256, "base64"),
    },
  };
}

/** The plaintext of a downloaded ciphertext; FG_ATTACHMENT_INVALID when its SHA-256 is not the event's. */
export function decryptAttachment(ciphertext: Buffer, keys: AttachmentKeys): Buffer {
  const hash = createHash("sha256").update(ciphertext).digest();
  if (keys.sha256.length !== hash.length || !timingSafeEqual(hash, keys.sha256))
    throw invalid("hash-mismatch", "the ciphertext's SHA-256 differs from the one the event says");
  return ctr(keys.key, keys.iv, ciphertext, true);
}
