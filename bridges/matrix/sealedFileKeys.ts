/**
 * The key of an encrypted Matrix attachment, inside the link the bridge hands out for it. The homeserver
 * holds only the ciphertext, so the link must bring the key to the bridge's media proxy, which decrypts as
 * it serves; carried in the link, it needs no state and outlives a restart of the bridge as long as the
 * link does. Links end up in events and logs that outlast them, so the key is sealed (AES-256-GCM, with a
 * key derived from the links' own HMAC key, bound to the file's mxc URI), never readable from the link.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import type { AttachmentKeys } from "./crypto/encryptedAttachment.js";

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** key 32, iv 16, sha256 32. */
const KEYS_BYTES = 80;
/** base64url of nonce, sealed keys and tag: 108 bytes. */
const SEALED = /^[A-Za-z0-9_-]{144}$/;

function sealingKey(linkKey: Buffer | string): Buffer {
  return Buffer.from(hkdfSync("sha256", linkKey, Buffer.alloc(0), "fedgate matrix attachment keys", 32));
}

/** The keys of the attachment at `mxc`, sealed for a link (144 base64url characters). */
export function sealFileKeys(linkKey: Buffer | string, mxc: string, keys: AttachmentKeys): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", sealingKey(linkKey), nonce);
  cipher.setAAD(Buffer.from(mxc, "utf8"));
  const sealed = Buffer.concat([
    cipher.update(Buffer.concat([keys.key, keys.iv, keys.sha256])),
    cipher.final(),
  ]);
  return Buffer.concat([nonce, sealed, cipher.getAuthTag()]).toString("base64url");
}

/** The keys a link carries for `mxc`; undefined when they were not sealed by this key for that file. */
export function openFileKeys(
  linkKey: Buffer | string,
  mxc: string,
  sealed: string,
): AttachmentKeys | undefined {
  if (!SEALED.test(sealed)) return undefined;
  const bytes = Buffer.from(sealed, "base64url");
  const decipher = createDecipheriv("aes-256-gcm", sealingKey(linkKey), bytes.subarray(0, NONCE_BYTES));
  decipher.setAAD(Buffer.from(mxc, "utf8"));
  decipher.setAuthTag(bytes.subarray(NONCE_BYTES + KEYS_BYTES, NONCE_BYTES + KEYS_BYTES + TAG_BYTES));
  let opened: Buffer;
  try {
    opened = Buffer.concat([
      decipher.update(bytes.subarray(NONCE_BYTES, NONCE_BYTES + KEYS_BYTES)),
      decipher.final(),
    ]);
  } catch {
    // Only an altered link or another key gets here, and the answer to either is the same refusal.
    return undefined;
  }
  return { key: opened.subarray(0, 32), iv: opened.subarray(32, 48), sha256: opened.subarray(48, 80) };
}
