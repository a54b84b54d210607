import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { PartnerManifest } from "../../../schemas/types.js";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { FedgateError } from "../../../schemas/contract/errors.js";
import { signManifest } from "../../../gateway/core/federation/partnerManifest.js";
import { PartnerManifestStore } from "../../../gateway/core/federation/PartnerManifestStore.js";

const authority = generateKeyPairSync("ed25519");
const stranger = generateKeyPairSync("ed25519");
let today = new Date("2026-12-06T12:00:00Z");

function manifest(version: number, change: Partial<PartnerManifest> = {}): PartnerManifest {
  return {
    version,
    gateway: { id: "fr", country: "FR", name: "Passerelle du ministère de l'Intérieur" },
    issuedAt: "2026-12-01T00:00:00Z",
    expiresAt: "2026-12-31T00:00:00Z",
    agencies: [{ id: "dinum-mi", name: "Ministère de l'Intérieur", country: "FR", accreditation: ["FR-DR"] }],
    endpoints: { leafnode: "tls://fedgate.interieur.example:7422" },
    pins: { tlsPublicKeySha256: ["b".repeat(64)] },
    ...change,
  };
}

async function codeOf(action: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await action();
  } catch (error) {
    if (error instanceof FedgateError) return error.code;
    throw error;
  }
  return undefined;
}

function store(): PartnerManifestStore {
  return new PartnerManifestStore(new MemoryKeyValue(), {
    authorities: [authority.publicKey],
    now: () => today,
  });
}

describe("PartnerManifestStore", () => {
  it("PartnerManifestStore - keeps a partner's newest manifest; an older one, replayed, does not replace it", async () => {
    const partners = store();
    await partners.accept(signManifest(manifest(1), authority.privateKey));
    const wider = manifest(2, {
      agencies: [{ id: "dinum-mi", name: "Ministère de l'Intérieur", country: "FR", accreditation: [] }],
    });
    await partners.accept(signManifest(wider, authority.privateKey));
    expect((await partners.get("fr"))?.version).toBe(2);
    // Version 1 granted FR-DR, version 2 withdrew it: replaying 1 must not bring it back.
    expect(await codeOf(() => partners.accept(signManifest(manifest(1), authority.privateKey)))).toBe(
      "FG_MANIFEST_STALE",
    );
    expect((await partners.get("fr"))?.agencies[0].accreditation).toEqual([]);
  });

  it("PartnerManifestStore - the same manifest again is accepted; another under the same version is refused", async () => {
    const partners = store();
    const signed = signManifest(manifest(3), authority.privateKey);
    await partners.accept(signed);
    expect((await partners.accept(structuredClone(signed))).version).toBe(3);
    const other = signManifest(
      manifest(3, { endpoints: { leafnode: "tls://elsewhere.example:7422" } }),
      authority.privateKey,
    );
    expect(await codeOf(() => partners.accept(other))).toBe("FG_MANIFEST_STALE");
  });

  it("PartnerManifestStore - nothing unverified is kept, and a held manifest that expired since is refused when read", async () => {
    const partners = store();
    expect(await codeOf(() => partners.accept(signManifest(manifest(1), stranger.privateKey)))).toBe(
      "FG_MANIFEST_UNTRUSTED",
    );
    expect(await partners.get("fr")).toBeUndefined();
    await partners.accept(signManifest(manifest(1), authority.privateKey));
    today = new Date("2027-01-01T00:00:00Z");
    expect(await codeOf(() => partners.get("fr"))).toBe("FG_MANIFEST_EXPIRED");
    today = new Date("2026-12-06T12:00:00Z");
  });
});
