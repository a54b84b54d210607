import { describe, expect, it } from "vitest";
import {
  decryptBytes,
  decryptText,
  encryptBytes,
  encryptText,
  lockPrivateKey,
  newKey,
  newKeyPair,
  unlockPrivateKey,
  unwrapChatKey,
  wrapChatKey,
} from "../../../bridges/stashcat/crypto.js";

const { publicKey, privateKey } = newKeyPair();

describe("Stashcat encryption", () => {
  it("Stashcat crypto - a private key locked in either form opens with its password only", () => {
    for (const form of ["pem", "jwk"] as const) {
      const locked = lockPrivateKey(privateKey, "Sicherheitspasswort", form);
      const chatKey = newKey();
      expect(
        unwrapChatKey(wrapChatKey(chatKey, publicKey), unlockPrivateKey(locked, "Sicherheitspasswort")),
      ).toEqual(chatKey);
      expect(() => unlockPrivateKey(locked, "falsch")).toThrow(/encryption password does not open it/);
    }
    expect(() => unlockPrivateKey("kein JSON", "x")).toThrow(/not JSON/);
    expect(() => unlockPrivateKey('{"something":1}', "x")).toThrow(/neither the PEM nor the JWK form/);
  });

  it("Stashcat crypto - a 64-hex-character chat key is the raw key; a key for someone else is refused", () => {
    const raw = newKey();
    expect(unwrapChatKey(raw.toString("hex"), privateKey)).toEqual(raw);
    const other = newKeyPair();
    expect(() => unwrapChatKey(wrapChatKey(raw, other.publicKey), privateKey)).toThrow(
      /not wrapped for this account/,
    );
  });

  it("Stashcat crypto - text goes round as lowercase hex, with a fresh IV each time", () => {
    const key = newKey();
    const first = encryptText("Lage ruhig ✓", key);
    const second = encryptText("Lage ruhig ✓", key);
    expect(first.text).toMatch(/^[0-9a-f]+$/);
    expect(first.iv).toMatch(/^[0-9a-f]{32}$/);
    expect(first.iv).not.toBe(second.iv);
    expect(decryptText(first.text, first.iv, key)).toBe("Lage ruhig ✓");
  });

  it("Stashcat crypto - a wrong key, a wrong or malformed IV, and non-hex text are refused with FG_DECRYPTION_FAILED", () => {
    const key = newKey();
    const sealed = encryptText("Ein längerer Text, der über mehrere Blöcke geht.", key);
    const refused = (f: () => unknown): unknown => {
      try {
        f();
      } catch (error) {
        return error;
      }
      return undefined;
    };
    for (const attempt of [
      () => decryptText(sealed.text, sealed.iv, newKey()),
      // A wrong IV garbles the first block only; what comes out is refused, not passed on.
      () => decryptText(sealed.text, "00".repeat(16), key),
      () => decryptText(sealed.text, "abcd", key),
      () => decryptText("zz", sealed.iv, key),
    ]) {
      expect(refused(attempt)).toMatchObject({ code: "FG_DECRYPTION_FAILED", transient: false });
    }
  });

  it("Stashcat crypto - files round-trip; a file key of the wrong size is refused", () => {
    const key = newKey();
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    const sealed = encryptBytes(bytes, key);
    expect(decryptBytes(sealed.data, key, sealed.iv)).toEqual(bytes);
    expect(() => decryptBytes(sealed.data, key.subarray(0, 16), sealed.iv)).toThrow(/key has 16 bytes/);
  });
});
