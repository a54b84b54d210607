/**
 * Consent grants between two gateways: made and verified only by the keys the manifests vouch for, never
 * undone by a replay, and a conversation active only while both sides' newest grants say so.
 */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ConsentGrant, PartnerManifest, SignedConsentGrant } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { grantKeyText, signGrant, verifyGrant } from "../../../gateway/core/federation/consentGrant.js";
import { ConsentStore } from "../../../gateway/core/federation/ConsentStore.js";

const deKey = generateKeyPairSync("ed25519");
const frKey = generateKeyPairSync("ed25519");
const strangerKey = generateKeyPairSync("ed25519");

function manifestOf(gateway: string, key: typeof deKey): PartnerManifest {
  return {
    version: 3,
    gateway: { id: gateway, country: gateway.toUpperCase(), name: gateway },
    issuedAt: "2026-01-01T00:00:00Z",
    expiresAt: "2036-01-01T00:00:00Z",
    agencies: [{ id: `${gateway}-agency`, name: "Agency", country: gateway.toUpperCase() }],
    endpoints: { leafnode: "nats-leaf://127.0.0.1:7422" },
    pins: { tlsPublicKeySha256: ["0".repeat(64)] },
    grantKeys: [grantKeyText(key.publicKey)],
  };
}

const manifests: Record<string, PartnerManifest> = {
  de: manifestOf("de", deKey),
  fr: manifestOf("fr", frKey),
};

function grant(overrides: Partial<ConsentGrant> = {}): ConsentGrant {
  return {
    gateway: "fr",
    partner: "de",
    conversation: "lage",
    state: "granted",
    serial: 10,
    issuedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    ...overrides,
  };
}

async function stores(
  now: () => number = Date.now,
  maxPartnerGrants?: number,
): Promise<{ de: ConsentStore; fr: ConsentStore }> {
  const open = async (self: string, key: typeof deKey): Promise<ConsentStore> => {
    const store = new ConsentStore(await new MemoryBus().keyValue(`consents-${self}`), {
      self,
      signingKey: key.privateKey,
      manifestOf: (partner) => manifests[partner],
      now,
      ...(maxPartnerGrants === undefined ? {} : { maxPartnerGrants }),
    });
    await store.start();
    return store;
  };
  return { de: await open("de", deKey), fr: await open("fr", frKey) };
}

describe("consent grants", () => {
  it("consent grants - verify only as the gateway's manifest vouches: its own key, unchanged, its own gateway", () => {
    const original = grant();
    const signed = signGrant(original, frKey.privateKey);
    expect(verifyGrant(signed, manifests["fr"] as PartnerManifest)).toEqual(original);

    const tampered: SignedConsentGrant = {
      ...signed,
      grant: { ...signed.grant, expiresAt: "2099-01-01T00:00:00.000Z" },
    };
    expect(() => verifyGrant(tampered, manifests["fr"] as PartnerManifest)).toThrow(
      /changed after it was signed/,
    );
    expect(() =>
      verifyGrant(signGrant(grant(), strangerKey.privateKey), manifests["fr"] as PartnerManifest),
    ).toThrow(expect.objectContaining({ code: "FG_GRANT_UNTRUSTED" }));
    // France's key, but a grant in Germany's name.
    expect(() =>
      verifyGrant(
        signGrant(grant({ gateway: "de", partner: "fr" }), frKey.privateKey),
        manifests["fr"] as PartnerManifest,
      ),
    ).toThrow(/a gateway sends its own grants only/);
    expect(() => verifyGrant({ grant: grant() }, manifests["fr"] as PartnerManifest)).toThrow(
      expect.objectContaining({ code: "FG_GRANT_INVALID" }),
    );
  });

  it("consent grants - active only while both sides' grants hold; a revocation is not undone by replaying the grant before it", async () => {
    let clock = Date.now();
    const { de, fr } = await stores(() => clock);
    const ours = await de.decide("fr", "lage", { state: "granted", validForMs: 60_000 });
    expect(de.get("fr", "lage")?.state).toBe("pending");
    await fr.receive("de", ours);
    expect(fr.get("de", "lage")?.state).toBe("pending");
    expect(fr.isActive("de", "lage")).toBe(false);

    const theirs = await fr.decide("de", "lage", {
      state: "granted",
      validForMs: 60_000,
      approvedBy: "officier",
    });
    await de.receive("fr", theirs);
    expect(de.isActive("fr", "lage")).toBe(true);
    expect(de.get("fr", "lage")).toMatchObject({ state: "active", theirs: { approvedBy: "officier" } });

    // The same grant again is taken as it is; the same serial under another signature is verified, and refused.
    expect(await de.receive("fr", theirs)).toEqual(theirs.grant);
    const forged: SignedConsentGrant = {
      ...theirs,
      signature: signGrant({ ...theirs.grant, expiresAt: "2099-01-01T00:00:00.000Z" }, strangerKey.privateKey)
        .signature,
    };
    await expect(de.receive("fr", forged)).rejects.toMatchObject({ code: "FG_GRANT_UNTRUSTED" });

    const revocation = await fr.decide("de", "lage", { state: "revoked", validForMs: 60_000 });
    expect(fr.isActive("de", "lage")).toBe(false);
    await de.receive("fr", revocation);
    expect(de.get("fr", "lage")?.state).toBe("revoked");
    await expect(de.receive("fr", theirs)).rejects.toMatchObject({ code: "FG_GRANT_STALE" });
    expect(de.isActive("fr", "lage")).toBe(false);

    // Granted again, then left to run out.
    await de.receive("fr", await fr.decide("de", "lage", { state: "granted", validForMs: 60_000 }));
    expect(de.isActive("fr", "lage")).toBe(true);
    clock += 61_000;
    expect(de.isActive("fr", "lage")).toBe(false);
    expect(de.get("fr", "lage")?.state).toBe("expired");
  });

  it("consent grants - a gateway keeps only grants addressed to it, from a partner whose manifest it holds", async () => {
    const { de } = await stores();
    await expect(de.receive("fr", signGrant(grant({ partner: "nl" }), frKey.privateKey))).rejects.toThrow(
      /addressed to gateway nl/,
    );
    await expect(
      de.receive("be", signGrant(grant({ gateway: "be" }), frKey.privateKey)),
    ).rejects.toMatchObject({
      code: "FG_PARTNER_NOT_FOUND",
    });
    expect(de.list()).toEqual([]);
  });

  it("consent grants - a partner cannot fill the store: grants for more shared conversations than the bound are refused", async () => {
    const { de } = await stores(Date.now, 3);
    for (const conversation of ["a", "b", "c"])
      await de.receive("fr", signGrant(grant({ conversation }), frKey.privateKey));
    await expect(
      de.receive("fr", signGrant(grant({ conversation: "d" }), frKey.privateKey)),
    ).rejects.toMatchObject({
      code: "FG_GRANT_INVALID",
    });
    // A newer grant for a conversation already held still replaces the old one.
    await de.receive(
      "fr",
      signGrant(grant({ conversation: "a", serial: 11, state: "revoked" }), frKey.privateKey),
    );
    expect(de.get("fr", "a")?.state).toBe("revoked");
    expect(de.list().map((c) => c.conversation)).toEqual(["a", "b", "c"]);
  });
});
