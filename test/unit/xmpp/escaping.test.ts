import { describe, expect, it } from "vitest";
import { escapeLocalpart, unescapeLocalpart } from "../../../bridges/xmpp/escaping.js";

describe("XEP-0106 - JID escaping", () => {
  // The examples of XEP-0106 §5.1.
  const examples: [string, string][] = [
    ["space cadet", "space\\20cadet"],
    ['call me "ishmael"', "call\\20me\\20\\22ishmael\\22"],
    ["at&t guy", "at\\26t\\20guy"],
    ["d'artagnan", "d\\27artagnan"],
    ["/.fanboy", "\\2f.fanboy"],
    ["::foo::", "\\3a\\3afoo\\3a\\3a"],
    ["<foo>", "\\3cfoo\\3e"],
    ["user@host", "user\\40host"],
    ["c:\\net", "c\\3a\\net"],
    ["c:\\\\net", "c\\3a\\\\net"],
    ["c:\\cool stuff", "c\\3a\\cool\\20stuff"],
    ["c:\\5commas", "c\\3a\\5c5commas"],
  ];

  it.each(examples)("XEP-0106 - %s escapes as the specification shows", (raw, escaped) => {
    expect(escapeLocalpart(raw)).toBe(escaped);
    expect(unescapeLocalpart(escaped)).toBe(raw);
  });

  it("XEP-0106 - a Matrix user id becomes a valid localpart and back", () => {
    const id = "matrix.tchap.@claire.martin:tchap.example";
    expect(escapeLocalpart(id)).toBe("matrix.tchap.\\40claire.martin\\3atchap.example");
    expect(unescapeLocalpart(escapeLocalpart(id))).toBe(id);
  });
});
