import { describe, expect, it } from "vitest";
import { xmlCharactersOnly } from "../../../bridges/xmpp/xmlCharacters.js";

describe("XML characters - what a stanza may hold", () => {
  it("XML characters - everything XML 1.0 forbids becomes U+FFFD, one for one", () => {
    const forbidden = [
      ...Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c)).filter((c) => !"\t\n\r".includes(c)),
      "\uFFFE",
      "\uFFFF",
      // Surrogates that are not half of a pair.
      "\uD83D",
      "\uDE93",
    ];
    for (const c of forbidden)
      expect(xmlCharactersOnly(`a${c}b`), c.charCodeAt(0).toString(16)).toBe("a\uFFFDb");
    // The other order of a pair is two lone halves.
    expect(xmlCharactersOnly("\uDE93\uD83D")).toBe("\uFFFD\uFFFD");
  });

  it("XML characters - what XML allows stays as it is", () => {
    const allowed = "Tab\there\nline\r\n 🚓 é \u0085 \u007F \uFFFD \u{10FFFD} <&>";
    expect(xmlCharactersOnly(allowed)).toBe(allowed);
  });
});
