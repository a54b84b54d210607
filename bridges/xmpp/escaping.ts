/**
 * JID escaping (XEP-0106), so that any remote user id can be the localpart of a puppet's JID:
 * "@claire:tchap.example" becomes "\40claire\3atchap.example".
 */
const ESCAPES: Record<string, string> = {
  " ": "\\20",
  '"': "\\22",
  "&": "\\26",
  "'": "\\27",
  "/": "\\2f",
  ":": "\\3a",
  "<": "\\3c",
  ">": "\\3e",
  "@": "\\40",
  "\\": "\\5c",
};
const SEQUENCES = "(20|22|26|27|2f|3a|3c|3e|40|5c)";
const AT_SEQUENCE = new RegExp(`^\\\\${SEQUENCES}`);
const ALL_SEQUENCES = new RegExp(`\\\\${SEQUENCES}`, "g");

export function escapeLocalpart(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i);
    // A backslash is escaped only where it would otherwise read as an escape sequence (XEP-0106 §4.3).
    out += ch === "\\" && !AT_SEQUENCE.test(text.slice(i)) ? ch : (ESCAPES[ch] ?? ch);
  }
  return out;
}

export function unescapeLocalpart(text: string): string {
  return text.replace(ALL_SEQUENCES, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}
