import { describe, expect, it } from "vitest";
import { cleanName, withoutXmlForbidden } from "../../../bridges/kit/cleanText.js";

describe("cleanText - text one network sends another", () => {
  it("cleanText - everything XML 1.0 forbids goes, or becomes U+FFFD one for one", () => {
    const forbidden = [
      ...Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c)).filter((c) => !"\t\n\r".includes(c)),
      "\uFFFE",
      "\uFFFF",
      // Surrogates that are not half of a pair.
      "\uD83D",
      "\uDE93",
    ];
    for (const c of forbidden) {
      expect(withoutXmlForbidden(`a${c}b`, "\uFFFD"), c.charCodeAt(0).toString(16)).toBe("a\uFFFDb");
      expect(withoutXmlForbidden(`a${c}b`), c.charCodeAt(0).toString(16)).toBe("ab");
    }
    // The other order of a pair is two lone halves.
    expect(withoutXmlForbidden("\uDE93\uD83D", "\uFFFD")).toBe("\uFFFD\uFFFD");
  });

  it("cleanText - what XML allows stays as it is", () => {
    const allowed = "Tab\there\nline\r\n 🚓 é \u0085 \u007F \uFFFD \u{10FFFD} <&>";
    expect(withoutXmlForbidden(allowed)).toBe(allowed);
  });

  it("cleanText - a name is one line without direction overrides, at most 256 code points", () => {
    expect(cleanName("Claire\u202e Martin\n(DGSI)")).toBe("Claire Martin (DGSI)");
    expect(cleanName("\u2066\u0007 ")).toBeUndefined();
    expect(Array.from(cleanName("😀".repeat(300)) ?? "")).toHaveLength(256);
  });
});
