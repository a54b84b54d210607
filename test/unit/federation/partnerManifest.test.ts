import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { PartnerManifest } from "../../../schemas/types.js";
import { FedgateError } from "../../../schemas/contract/errors.js";
import {
  keyIdOf,
  privateKeyFrom,
  publicKeyFrom,
  signManifest,
  verifyManifest,
} from "../../../gateway/core/federation/partnerManifest.js";

const authority = generateKeyPairSync("ed25519");
const other = generateKeyPairSync("ed25519");
const now = new Date("2026-12-06T12:00:00Z");

function manifest(change: Partial<PartnerManifest> = {}): PartnerManifest {
  return {
    version: 3,
    gateway: { id: "fr", country: "FR", name: "Passerelle fedgate du ministère de l'Intérieur" },
    issuedAt: "2026-12-01T00:00:00Z",
    expiresAt: "2027-06-01T00:00:00Z",
    agencies: [{ id: "dinum-mi", name: "Ministère de l'Intérieur", country: "FR", accreditation: ["FR-DR"] }],
    endpoints: { leafnode: "tls://fedgate.interieur.example:7422" },
    pins: { tlsPublicKeySha256: ["a".repeat(64)] },
    equivalences: [["FR-DR", "DE-VS-NFD"]],
    ...change,
  };
}

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof FedgateError) return error.code;
    throw error;
  }
  return undefined;
}

const trusting = { authorities: [authority.publicKey], now };

describe("partner manifests", () => {
  it("partner manifest - signed by a trusted authority, verified as it was signed, whatever its keys' order", () => {
    const signed = signManifest(manifest(), authority.privateKey);
    expect(signed.signature.keyId).toBe(keyIdOf(authority.publicKey));
    // Read back from YAML or another tool, a manifest's keys may come in another order.
    const reversed = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reversed)
        : typeof value === "object" && value !== null
          ? Object.fromEntries(
              Object.entries(value)
                .reverse()
                .map(([key, inner]) => [key, reversed(inner)]),
            )
          : value;
    const reordered = reversed(signed);
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(signed));
    expect(verifyManifest(reordered, trusting)).toEqual(manifest());
  });

  it("partner manifest - a value changed after signing is refused as tampered", () => {
    const signed = signManifest(manifest(), authority.privateKey);
    const claimsMore = structuredClone(signed);
    claimsMore.manifest.agencies.push({ id: "bpol", name: "Bundespolizei", country: "DE" });
    const raised = structuredClone(signed);
    const [agency, ...others] = raised.manifest.agencies;
    raised.manifest.agencies = [
      { ...agency, accreditation: [...(agency.accreditation ?? []), "DE-VS-NFD"] },
      ...others,
    ];
    const later = structuredClone(signed);
    later.manifest.expiresAt = "2036-01-01T00:00:00Z";
    for (const document of [claimsMore, raised, later])
      expect(codeOf(() => verifyManifest(document, trusting))).toBe("FG_MANIFEST_TAMPERED");
  });

  it("partner manifest - unsigned, signed by an unknown key, or with a signature that is not Ed25519: refused", () => {
    const signed = signManifest(manifest(), other.privateKey);
    expect(codeOf(() => verifyManifest(manifest(), trusting))).toBe("FG_MANIFEST_UNSIGNED");
    expect(codeOf(() => verifyManifest({ manifest: manifest() }, trusting))).toBe("FG_MANIFEST_UNSIGNED");
    expect(
      codeOf(() =>
        verifyManifest({ ...signed, signature: { ...signed.signature, algorithm: "none" } }, trusting),
      ),
    ).toBe("FG_MANIFEST_UNSIGNED");
    expect(codeOf(() => verifyManifest(signed, trusting))).toBe("FG_MANIFEST_UNTRUSTED");
    // A signature by the other key under the trusted key's id does not verify.
    const borrowed = { ...signed, signature: { ...signed.signature, keyId: keyIdOf(authority.publicKey) } };
    expect(codeOf(() => verifyManifest(borrowed, trusting))).toBe("FG_MANIFEST_TAMPERED");
    expect(verifyManifest(signed, { authorities: [authority.publicKey, other.publicKey], now }).version).toBe(
      3,
    );
  });

  it("partner manifest - outside its validity (expired, not yet issued beyond the clock skew) it is refused", () => {
    const signed = signManifest(manifest(), authority.privateKey);
    expect(codeOf(() => verifyManifest(signed, { ...trusting, now: new Date("2027-06-01T00:00:00Z") }))).toBe(
      "FG_MANIFEST_EXPIRED",
    );
    expect(codeOf(() => verifyManifest(signed, { ...trusting, now: new Date("2026-11-30T23:00:00Z") }))).toBe(
      "FG_MANIFEST_EXPIRED",
    );
    // Five minutes of difference between two gateways' clocks are no reason to refuse.
    expect(verifyManifest(signed, { ...trusting, now: new Date("2026-11-30T23:56:00Z") }).version).toBe(3);
    const backwards = signManifest(manifest({ expiresAt: "2026-11-01T00:00:00Z" }), authority.privateKey);
    expect(codeOf(() => verifyManifest(backwards, trusting))).toBe("FG_MANIFEST_INVALID");
  });

  it("partner manifest - an authority cannot sign, nor a gateway accept, a manifest the schema refuses", () => {
    const bad = { ...manifest(), pins: { tlsPublicKeySha256: ["not a fingerprint"] } };
    expect(codeOf(() => signManifest(bad, authority.privateKey))).toBe("FG_MANIFEST_INVALID");
    expect(codeOf(() => signManifest({ ...manifest(), agencies: [] }, authority.privateKey))).toBe(
      "FG_MANIFEST_INVALID",
    );
    // A name an operator's terminal would act on (an escape sequence) is no name.
    const escaping = { ...manifest(), gateway: { id: "fr", country: "FR", name: "\u001b[2JPasserelle" } };
    expect(codeOf(() => signManifest(escaping, authority.privateKey))).toBe("FG_MANIFEST_INVALID");
  });

  it("partner manifest - key files: Ed25519 PEM only, a public key read from its private key too", () => {
    const pem = authority.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const publicPem = authority.publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(keyIdOf(privateKeyFrom(pem, "issuer.key"))).toBe(keyIdOf(authority.publicKey));
    expect(keyIdOf(publicKeyFrom(publicPem, "issuer.pub"))).toBe(keyIdOf(authority.publicKey));
    expect(keyIdOf(publicKeyFrom(pem, "issuer.key"))).toBe(keyIdOf(authority.publicKey));
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const rsaPem = rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(codeOf(() => privateKeyFrom(rsaPem, "rsa.key"))).toBe("FG_KEY_INVALID");
    expect(codeOf(() => publicKeyFrom("hello", "garbage.pub"))).toBe("FG_KEY_INVALID");
    expect(codeOf(() => signManifest(manifest(), rsa.privateKey))).toBe("FG_KEY_INVALID");
  });
});
