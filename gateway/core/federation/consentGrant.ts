/**
 * Consent grants: a gateway's signed approval (or revocation) of one conversation shared with one partner.
 * Each gateway signs its own with a key its manifest lists in grantKeys; the partner verifies them against
 * that manifest, which the partner's configured authority signed. So a grant is worth only as much as the
 * manifest behind it, and nobody on the path between the two gateways can make or undo one.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import type { ConsentGrant, PartnerManifest, SignedConsentGrant } from "../../../schemas/types.js";
import { validateSignedConsentGrant } from "../../../schemas/contract/schemas.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { keyIdOf, signatureValid, signCanonical } from "./canonicalSignature.js";

/** How a grant key is written in a manifest's grantKeys: its SubjectPublicKeyInfo, DER, base64. */
export function grantKeyText(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  return publicKey.export({ type: "spki", format: "der" }).toString("base64");
}

/** Grant keys as read from manifests, by their text: a handful per partner, read again for every grant. */
const grantKeys = new Map<string, { key: KeyObject; id: string }>();
const MAX_GRANT_KEYS = 1024;

function grantKeyOf(text: string): { key: KeyObject; id: string } {
  let known = grantKeys.get(text);
  if (known === undefined) {
    const key = createPublicKey({ key: Buffer.from(text, "base64"), format: "der", type: "spki" });
    known = { key, id: keyIdOf(key) };
    if (grantKeys.size >= MAX_GRANT_KEYS) grantKeys.clear();
    grantKeys.set(text, known);
  }
  return known;
}

/** Signs a grant, checked against the schema first. */
export function signGrant(grant: ConsentGrant, privateKey: KeyObject): SignedConsentGrant {
  const signed = { grant, signature: signCanonical(grant, privateKey, "FG_GRANT_INVALID") };
  return validateSignedConsentGrant(signed);
}

/**
 * The grant, if the gateway `manifest` describes signed it with one of its grant keys, as it is. Throws
 * FG_GRANT_INVALID (not a signed grant) or FG_GRANT_UNTRUSTED (another gateway's, or a key or signature the
 * manifest does not vouch for).
 */
export function verifyGrant(document: unknown, manifest: PartnerManifest): ConsentGrant {
  const { grant, signature } = validateSignedConsentGrant(document);
  const gateway = manifest.gateway.id;
  if (grant.gateway !== gateway)
    throw new PermanentError(
      "FG_GRANT_UNTRUSTED",
      `a grant of gateway ${grant.gateway} arrived from gateway ${gateway}: a gateway sends its own grants only`,
    );
  const key = (manifest.grantKeys ?? [])
    .map(grantKeyOf)
    .find((candidate) => candidate.id === signature.keyId)?.key;
  if (key === undefined)
    throw new PermanentError(
      "FG_GRANT_UNTRUSTED",
      `gateway ${gateway}'s grant is signed by key ${signature.keyId}, which its manifest (version ${String(manifest.version)}) does not list in grantKeys`,
    );
  if (!signatureValid(grant, signature.value, key, "FG_GRANT_INVALID"))
    throw new PermanentError(
      "FG_GRANT_UNTRUSTED",
      `gateway ${gateway}'s grant for ${grant.conversation} does not match its signature: it was changed after it was signed`,
    );
  return grant;
}

/** Whether a grant consents now. */
export function consents(grant: ConsentGrant | undefined, now: number): boolean {
  return grant?.state === "granted" && Date.parse(grant.expiresAt) > now;
}
