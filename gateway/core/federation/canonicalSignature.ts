/**
 * Ed25519 over a document's canonical JSON (RFC 8785): what an authority signs a manifest with and what a
 * gateway signs its consent grants with. Re-serialising a signed document (YAML to JSON, keys in another
 * order) keeps it valid; changing any value does not.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import canonicalize from "canonicalize";
import type { ManifestSignature } from "../../../schemas/types.js";
import { type ErrorCode, PermanentError } from "../../../schemas/contract/errors.js";

/** The bytes signed: the document's canonical JSON; `code` names what it was meant to be. */
export function canonicalBytes(document: unknown, code: ErrorCode): Buffer {
  const text = canonicalize(document);
  if (text === undefined) throw new PermanentError(code, "the document is not JSON data");
  return Buffer.from(text, "utf8");
}

/** Which key signed: 16 bytes of the SHA-256 of its SubjectPublicKeyInfo, base64url (22 characters). */
export function keyIdOf(key: KeyObject): string {
  const spki = (key.type === "private" ? createPublicKey(key) : key).export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest().subarray(0, 16).toString("base64url");
}

/** The signature of `document` by `privateKey` (an Ed25519 key). */
export function signCanonical(document: unknown, privateKey: KeyObject, code: ErrorCode): ManifestSignature {
  const value = sign(null, canonicalBytes(document, code), privateKey).toString("base64");
  return { algorithm: "Ed25519", keyId: keyIdOf(privateKey), value };
}

/** Whether `signatureValue` (base64) is `publicKey`'s signature of `document`. */
export function signatureValid(
  document: unknown,
  signatureValue: string,
  publicKey: KeyObject,
  code: ErrorCode,
): boolean {
  return verify(null, canonicalBytes(document, code), publicKey, Buffer.from(signatureValue, "base64"));
}
