/**
 * Stashcat's client-side encryption: a user's RSA key pair (the private key locked with their encryption
 * password), a 32-byte AES key per chat wrapped for each member with RSA-OAEP (SHA-1), and message text
 * and files under AES-256-CBC with a fresh IV, as lowercase hex. Everything the bridge and the test server
 * encrypt or decrypt goes through here.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  pbkdf2Sync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  constants,
  type KeyObject,
} from "node:crypto";
import { PermanentError } from "../../schemas/contract/errors.js";

const AES = "aes-256-cbc";
const HEX = /^(?:[0-9a-f]{2})*$/i;
const RAW_KEY = /^[0-9a-f]{64}$/i;
/** PBKDF2 rounds for a JWK-form private key locked here (the test server's fixtures). */
const JWK_ITERATIONS = 100_000;

function failed(what: string, reason: string, cause?: unknown): PermanentError {
  return new PermanentError("FG_DECRYPTION_FAILED", `${what}: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    detail: { what, reason },
  });
}

/** A new chat or file key: 32 random bytes. */
export function newKey(): Buffer {
  return randomBytes(32);
}

/** A user's key pair, as Stashcat's clients make it (2048-bit RSA suffices for the scheme). */
export function newKeyPair(bits = 2048): { publicKey: string; privateKey: KeyObject } {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: bits });
  return { publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(), privateKey };
}

/**
 * The private key as `security/get_private_key` returns it (`payload.keys.private_key`, a JSON string),
 * locked with the encryption password: the legacy form `{"private": "<encrypted PKCS#8 PEM>"}`, or the JWK
 * form `{ciphertext, iv, key_derivation_properties: {iterations, prf, salt}}`.
 */
export function lockPrivateKey(privateKey: KeyObject, password: string, form: "pem" | "jwk" = "pem"): string {
  if (form === "pem") {
    const pem = privateKey.export({
      type: "pkcs8",
      format: "pem",
      cipher: AES,
      passphrase: password,
    });
    return JSON.stringify({ private: pem.toString() });
  }
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(password, salt, JWK_ITERATIONS, 32, "sha256");
  const cipher = createCipheriv(AES, key, iv);
  const jwk = JSON.stringify(privateKey.export({ format: "jwk" }));
  const ciphertext = Buffer.concat([cipher.update(jwk, "utf8"), cipher.final()]);
  return JSON.stringify({
    ciphertext: ciphertext.toString("base64"),
    iv: iv.toString("base64"),
    key_derivation_properties: { iterations: JWK_ITERATIONS, prf: "sha256", salt: salt.toString("base64") },
  });
}

/** Opens the private key with the encryption password; either form `lockPrivateKey` describes. */
export function unlockPrivateKey(lockedJson: string, password: string): KeyObject {
  let locked: unknown;
  try {
    locked = JSON.parse(lockedJson);
  } catch (cause) {
    throw failed("private key", "it is not JSON", cause);
  }
  if (typeof locked !== "object" || locked === null) throw failed("private key", "it is not a JSON object");
  const form = locked as Record<string, unknown>;
  if (typeof form["private"] === "string") {
    try {
      return createPrivateKey({ key: form["private"], format: "pem", passphrase: password });
    } catch (cause) {
      throw failed("private key", "the encryption password does not open it", cause);
    }
  }
  const { ciphertext, iv, key_derivation_properties: kdf } = form;
  const props = (typeof kdf === "object" && kdf !== null ? kdf : {}) as Record<string, unknown>;
  const { iterations, salt } = props;
  if (
    typeof ciphertext !== "string" ||
    typeof iv !== "string" ||
    typeof salt !== "string" ||
    typeof iterations !== "number"
  )
    throw failed("private key", "it is neither the PEM nor the JWK form");
  let jwk: unknown;
  try {
    const key = pbkdf2Sync(password, Buffer.from(salt, "base64"), iterations, 32, "sha256");
    const decipher = createDecipheriv(AES, key, Buffer.from(iv, "base64"));
    const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, "base64")), decipher.final()]);
    jwk = JSON.parse(plain.toString("utf8"));
  } catch (cause) {
    throw failed("private key", "the encryption password does not open it", cause);
  }
  try {
    return createPrivateKey({ key: jwk as Record<string, string>, format: "jwk" });
  } catch (cause) {
    throw failed("private key", "it does not hold an RSA private key", cause);
  }
}

/** A chat key wrapped for one member: base64 of RSA-OAEP (SHA-1, MGF1 SHA-1, no label). */
export function wrapChatKey(chatKey: Buffer, publicKeyPem: string): string {
  return publicEncrypt(
    { key: createPublicKey(publicKeyPem), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
    chatKey,
  ).toString("base64");
}

/**
 * A chat's key from a member's `key` field: 64 hex characters are the raw key (some deployments send
 * channel keys so); anything else is base64 RSA-OAEP for this member.
 */
export function unwrapChatKey(wrapped: string, privateKey: KeyObject): Buffer {
  if (RAW_KEY.test(wrapped)) return Buffer.from(wrapped, "hex");
  let key: Buffer;
  try {
    key = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      Buffer.from(wrapped, "base64"),
    );
  } catch (cause) {
    throw failed("chat key", "it is not wrapped for this account", cause);
  }
  if (key.length !== 32) throw failed("chat key", `it has ${String(key.length)} bytes, not 32`);
  return key;
}

/** Bytes under AES-256-CBC; a fresh IV unless one is given (a message's location reuses its text's). */
export function encryptBytes(
  plain: Buffer,
  key: Buffer,
  iv: Buffer = randomBytes(16),
): { data: Buffer; iv: Buffer } {
  const cipher = createCipheriv(AES, key, iv);
  return { data: Buffer.concat([cipher.update(plain), cipher.final()]), iv };
}

export function decryptBytes(data: Buffer, key: Buffer, iv: Buffer, what = "file"): Buffer {
  if (iv.length !== 16) throw failed(what, `its IV has ${String(iv.length)} bytes, not 16`);
  if (key.length !== 32) throw failed(what, `its key has ${String(key.length)} bytes, not 32`);
  try {
    const decipher = createDecipheriv(AES, key, iv);
    return Buffer.concat([decipher.update(data), decipher.final()]);
  } catch (cause) {
    throw failed(what, "the key and IV do not open it", cause);
  }
}

/** Message text as `message/send` takes it: lowercase hex ciphertext and IV. */
export function encryptText(text: string, key: Buffer): { text: string; iv: string } {
  const { data, iv } = encryptBytes(Buffer.from(text, "utf8"), key);
  return { text: data.toString("hex"), iv: iv.toString("hex") };
}

/** The plaintext of an encrypted message; text that does not open, or is not UTF-8, is refused. */
export function decryptText(hexText: string, hexIv: string, key: Buffer): string {
  if (!HEX.test(hexText)) throw failed("message", "its text is not hex");
  if (!HEX.test(hexIv)) throw failed("message", "its IV is not hex");
  const plain = decryptBytes(Buffer.from(hexText, "hex"), key, Buffer.from(hexIv, "hex"), "message");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(plain);
  } catch (cause) {
    throw failed("message", "its plaintext is not UTF-8", cause);
  }
  // CBC has no integrity check: a wrong IV garbles only the first block and still "opens". Garbage is almost
  // never valid UTF-8 free of control characters; this refuses the rest rather than passing it on.
  if (hasControlCharacters(text))
    throw failed("message", "its plaintext holds control characters (a wrong IV or key)");
  return text;
}

/** C0 controls other than tab, line feed and carriage return, and DEL. */
function hasControlCharacters(text: string): boolean {
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    if ((code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) || code === 0x7f) return true;
  }
  return false;
}
