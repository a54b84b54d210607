import { describe, expect, it } from "vitest";
import { escapeLocalpart } from "../../../bridges/xmpp/escaping.js";
import { puppetJid } from "../../../bridges/xmpp/puppetJid.js";

const config = { domain: "bridge.bpol.example" };
const jidOf = (userId: string): string => puppetJid("matrix", "tchap", userId, config);

describe("puppet JIDs - one for each remote person", () => {
  it("puppet JIDs - ids without upper case keep the JIDs they had: the escape, lower-cased", () => {
    for (const id of [
      "@claire.martin:tchap.gouv.fr",
      "1001",
      "weber@bpol.localhost",
      "@é_ü=40:x",
      "@σοφία:x",
    ]) {
      expect(jidOf(id)).toBe(`${escapeLocalpart(`matrix.tchap.${id}`).toLowerCase()}@${config.domain}`);
    }
  });

  it("puppet JIDs - ids that differ only in case get different JIDs, all of them lower case", () => {
    expect(jidOf("@Claire:x")).toBe("matrix.tchap.\\40^claire\\3ax@bridge.bpol.example");
    const lookalikes = [
      ["@Claire:x", "@claire:x", "@^claire:x", "@^^claire:x", "@^Claire:x"],
      // Kelvin sign, K and k; dotted capital I; title-case, upper and lower dz; capital and small sharp s.
      ["\u212A", "K", "k", "\u0130", "i\u0307", "\u01C5", "\u01C4", "\u01C6", "\u1E9E", "\u00DF", "ss", "SS"],
      // What the mark writes for a character whose lower case does not lead back, and that text itself.
      ["\u212A", "^#212a;", "^^#212a;"],
      ["\u03A3\u03A3", "\u03C3\u03C3", "\u03C3\u03C2", "\u03A3\u03C2"],
    ];
    for (const group of lookalikes) {
      const jids = group.map(jidOf);
      expect(new Set(jids).size, group.join(" ")).toBe(group.length);
      for (const jid of jids) expect(jid).toBe(jid.toLowerCase());
    }
  });

  it("puppet JIDs - no two of many random ids share a JID", () => {
    const alphabet = [
      "a",
      "A",
      "^",
      "#",
      ";",
      "\\",
      "4",
      "0",
      "@",
      ":",
      " ",
      "\u212A",
      "k",
      "K",
      "\u0130",
      "i",
      "\u00DF",
    ];
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const length = 1 + (i % 6);
      ids.add(Array.from({ length }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join(""));
    }
    const jids = new Set([...ids].map(jidOf));
    expect(jids.size).toBe(ids.size);
  });
});
