import { describe, expect, it } from "vitest";
import { keyToken } from "../../../gateway/platform/bus/KeyValueStore.js";

const KEY_SAFE = /^[A-Za-z0-9_=-]+$/;

describe("keyToken - any string as one bounded key token", () => {
  it("keyToken - a short string stays readable as base64url, the empty string has a token too", () => {
    expect(keyToken("weber@bpol.example")).toBe(Buffer.from("weber@bpol.example").toString("base64url"));
    expect(keyToken("")).toBe("_");
  });

  it("keyToken - a string of any length gives a key-safe token of at most 160 characters, distinct per string", () => {
    const seen = new Set<string>();
    for (const length of [1, 50, 119, 120, 121, 500, 4000, 100_000]) {
      for (const fill of ["a", "é", "😀"]) {
        const token = keyToken(fill.repeat(length));
        expect(token).toMatch(KEY_SAFE);
        expect(token.length).toBeLessThanOrEqual(160);
        expect(seen.has(token)).toBe(false);
        seen.add(token);
      }
    }
    // Long strings that differ only at the end are different keys.
    expect(keyToken(`${"x".repeat(4000)}a`)).not.toBe(keyToken(`${"x".repeat(4000)}b`));
  });
});
