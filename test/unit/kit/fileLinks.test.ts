/**
 * The signed links bridges hand out for their network's files: what the signature covers, and how long a
 * link lasts.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { checkSignedLink, signedLinkQuery } from "../../../bridges/kit/fileLinks.js";

const key = randomBytes(32);
const hour = 3600;
const day = 24 * hour;
/** 2025-03-01T12:00:00Z, in milliseconds. */
const now = Date.UTC(2025, 2, 1, 12);

function query(subject: string, name: string, lifetime = day, at = now): { exp: string; sig: string } {
  const params = new URLSearchParams(signedLinkQuery(key, subject, name, lifetime, at));
  return { exp: params.get("exp") ?? "", sig: params.get("sig") ?? "" };
}

describe("signed file links", () => {
  it("file links - a link is valid until its expiry, and expired after", () => {
    const signed = query("stashcat/42", "Lagebild.pdf");
    const expires = Number(signed.exp) * 1000;
    expect(checkSignedLink(key, "stashcat/42", "Lagebild.pdf", signed, now)).toBe("valid");
    expect(checkSignedLink(key, "stashcat/42", "Lagebild.pdf", signed, expires - 1)).toBe("valid");
    expect(checkSignedLink(key, "stashcat/42", "Lagebild.pdf", signed, expires)).toBe("expired");
  });

  it("file links - the file, its name and the expiry are all signed", () => {
    const signed = query("stashcat/42", "Lagebild.pdf");
    expect(checkSignedLink(key, "stashcat/43", "Lagebild.pdf", signed, now)).toBe("invalid");
    expect(checkSignedLink(key, "stashcat/42", "Lagebild.exe", signed, now)).toBe("invalid");
    const later = { ...signed, exp: String(Number(signed.exp) + day) };
    expect(checkSignedLink(key, "stashcat/42", "Lagebild.pdf", later, now)).toBe("invalid");
    expect(checkSignedLink(randomBytes(32), "stashcat/42", "Lagebild.pdf", signed, now)).toBe("invalid");
    // No field of the signed text can spill into another.
    const split = query("a", "b\u0000c");
    expect(checkSignedLink(key, "a\u0000b", "c", split, now)).toBe("invalid");
  });

  it("file links - a missing or malformed signature or expiry is invalid, even for an expired link", () => {
    const signed = query("stashcat/42", "a.pdf");
    for (const bad of [
      {},
      { sig: signed.sig },
      { exp: signed.exp },
      { ...signed, exp: "soon" },
      { ...signed, exp: `${signed.exp}.0` },
      { ...signed, exp: [signed.exp] },
      { ...signed, sig: "not base64url!" },
      { ...signed, sig: signed.sig.slice(1) },
    ])
      expect(checkSignedLink(key, "stashcat/42", "a.pdf", bad, now), JSON.stringify(bad)).toBe("invalid");
    const past = query("stashcat/42", "a.pdf", day, now - 10 * day);
    expect(checkSignedLink(key, "stashcat/42", "a.pdf", { ...past, sig: signed.sig }, now)).toBe("invalid");
  });

  it("file links - a link lasts between half its lifetime and all of it, and stays the same meanwhile", () => {
    for (let at = now; at < now + 2 * day; at += 17 * 60_000) {
      const lasts = Number(query("m", "avatar", day, at).exp) * 1000 - at;
      expect(lasts).toBeGreaterThan((day / 2) * 1000);
      expect(lasts).toBeLessThanOrEqual(day * 1000);
    }
    // A person's picture keeps one link for a while, so the receiving side does not fetch it again.
    expect(query("m", "avatar", day, now)).toEqual(query("m", "avatar", day, now + 60_000));
    expect(Number(query("m", "avatar", hour, now).exp) * 1000 - now).toBeLessThanOrEqual(hour * 1000);
  });
});
