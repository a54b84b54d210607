/**
 * Partner manifests: what a partner gateway is and may do, signed with Ed25519 by the authority that issues
 * it, and verified against the authority keys a gateway is configured with. A gateway takes nothing of a
 * partner on the partner's word: an unsigned manifest, one signed by a key it was not given, one changed
 * after signing, or one outside its validity is refused, each with its own error code.
 *
 * The signature covers the manifest's canonical JSON (RFC 8785), so re-serialising it (YAML to JSON, keys in
 * another order) keeps it valid, and changing any value does not.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import type { PartnerManifest, SignedPartnerManifest } from "../../../schemas/types.js";
import { validatePartnerManifest, validateSignedPartnerManifest } from "../../../schemas/contract/schemas.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { keyIdOf, signatureValid, signCanonical } from "./canonicalSignature.js";

export { keyIdOf } from "./canonicalSignature.js";

/** How far a manifest's issue time may lie ahead of this gateway's clock: clocks of two countries differ. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An Ed25519 key, or FG_KEY_INVALID naming where it came from. */
function ed25519(key: KeyObject, where: string): KeyObject {
  if (key.asymmetricKeyType !== "ed25519")
    throw new PermanentError(
      "FG_KEY_INVALID",
      `${where} is a ${key.asymmetricKeyType ?? key.type} key, not an Ed25519 key`,
    );
  return key;
}

/** An authority's private key from PEM (PKCS #8). */
export function privateKeyFrom(pem: string, where: string): KeyObject {
  try {
    return ed25519(createPrivateKey(pem), where);
  } catch (cause) {
    if (cause instanceof PermanentError) throw cause;
    throw new PermanentError("FG_KEY_INVALID", `${where} holds no private key in PEM`, { cause });
  }
}

/** An authority's public key from PEM (SubjectPublicKeyInfo, or the private key it belongs to). */
export function publicKeyFrom(pem: string, where: string): KeyObject {
  try {
    return ed25519(createPublicKey(pem), where);
  } catch (cause) {
    if (cause instanceof PermanentError) throw cause;
    throw new PermanentError("FG_KEY_INVALID", `${where} holds no public key in PEM`, { cause });
  }
}

/** Signs a manifest, checked against the schema first: an authority never signs what a gateway refuses. */
export function signManifest(manifest: unknown, privateKey: KeyObject): SignedPartnerManifest {
  const checked = validatePartnerManifest(manifest);
  return {
    manifest: checked,
    signature: signCanonical(checked, ed25519(privateKey, "the signing key"), "FG_MANIFEST_INVALID"),
  };
}

export interface VerifyOptions {
  /** The issuing authorities' public keys this gateway trusts. */
  authorities: readonly KeyObject[];
  /** The time it is verified at. */
  now?: Date;
}

/**
 * The manifest, if a trusted authority signed it as it is and it is valid now. The signature is checked
 * before the schema, on the manifest as received: a check that filled in defaults would change what was
 * signed.
 */
export function verifyManifest(document: unknown, options: VerifyOptions): PartnerManifest {
  if (!isRecord(document) || !isRecord(document["manifest"]) || !("signature" in document))
    throw new PermanentError(
      "FG_MANIFEST_UNSIGNED",
      "the document is not a signed manifest: it has no manifest and signature (sign it with `fedgate federation manifest sign`)",
    );
  const { signature } = document;
  if (
    !isRecord(signature) ||
    signature["algorithm"] !== "Ed25519" ||
    typeof signature["keyId"] !== "string" ||
    typeof signature["value"] !== "string"
  )
    throw new PermanentError("FG_MANIFEST_UNSIGNED", "the manifest's signature is not an Ed25519 signature");
  const keyId = signature["keyId"];
  const authority = options.authorities.find((key) => keyIdOf(key) === keyId);
  if (authority === undefined)
    throw new PermanentError(
      "FG_MANIFEST_UNTRUSTED",
      `the manifest is signed by key ${keyId}, which is none of the ${String(options.authorities.length)} authority keys this gateway trusts`,
      { detail: { keyId } },
    );
  if (!signatureValid(document["manifest"], signature["value"], authority, "FG_MANIFEST_INVALID"))
    throw new PermanentError(
      "FG_MANIFEST_TAMPERED",
      `the manifest does not match its signature by key ${keyId}: it was changed after it was signed`,
      { detail: { keyId } },
    );
  const { manifest } = validateSignedPartnerManifest(document);
  const now = (options.now ?? new Date()).getTime();
  const issuedAt = Date.parse(manifest.issuedAt);
  const expiresAt = Date.parse(manifest.expiresAt);
  const gateway = `${manifest.gateway.id} (${manifest.gateway.country}), version ${String(manifest.version)}`;
  if (expiresAt <= issuedAt)
    throw new PermanentError("FG_MANIFEST_INVALID", `the manifest of ${gateway} expires before it is issued`);
  if (issuedAt > now + CLOCK_SKEW_MS)
    throw new PermanentError(
      "FG_MANIFEST_EXPIRED",
      `the manifest of ${gateway} is not valid yet: issued at ${manifest.issuedAt}`,
    );
  if (expiresAt <= now)
    throw new PermanentError(
      "FG_MANIFEST_EXPIRED",
      `the manifest of ${gateway} expired at ${manifest.expiresAt}; its authority must issue a new one`,
    );
  return manifest;
}
