/** Out-of-band data (XEP-0066): reading the files a stanza announces, and building the announcement. */
import { describe, expect, it } from "vitest";
import { outOfBandElement, outOfBandOf } from "../../../bridges/xmpp/outOfBand.js";
import { xml } from "../../../bridges/xmpp/XmppComponent.js";

const OOB = "jabber:x:oob";
const url = "https://upload.bpol.localhost/file_share/0b7c/lage.pdf";

function message(...children: ReturnType<typeof xml>[]): ReturnType<typeof xml> {
  return xml("message", { type: "groupchat", from: "lage@conference.bpol.localhost/Alice" }, ...children);
}

describe("outOfBandOf", () => {
  it("reads url and desc of every x element, in order", () => {
    const stanza = message(
      xml("body", {}, url),
      xml("x", { xmlns: OOB }, xml("url", {}, url), xml("desc", {}, " Lagebild ")),
      xml("x", { xmlns: OOB }, xml("url", {}, " http://127.0.0.1:5280/file_share/a/b.png ")),
    );
    expect(outOfBandOf(stanza)).toEqual([
      { url, desc: "Lagebild" },
      { url: "http://127.0.0.1:5280/file_share/a/b.png" },
    ]);
  });

  it("ignores x elements without a URL, with one that is not http(s), or in another namespace", () => {
    const stanza = message(
      xml("x", { xmlns: OOB }, xml("desc", {}, "no url")),
      xml("x", { xmlns: OOB }, xml("url", {}, "")),
      xml("x", { xmlns: OOB }, xml("url", {}, "file:///etc/passwd")),
      xml("x", { xmlns: OOB }, xml("url", {}, "javascript:alert(1)")),
      xml("x", { xmlns: OOB }, xml("url", {}, "not a url")),
      xml("x", { xmlns: "jabber:x:data" }, xml("url", {}, url)),
    );
    expect(outOfBandOf(stanza)).toEqual([]);
  });

  it("finds nothing in a plain message; an empty desc is left out", () => {
    expect(outOfBandOf(message(xml("body", {}, "hallo")))).toEqual([]);
    const stanza = message(xml("x", { xmlns: OOB }, xml("url", {}, url), xml("desc", {}, "  ")));
    expect(outOfBandOf(stanza)).toEqual([{ url }]);
  });
});

describe("outOfBandElement", () => {
  it("builds the x element, with desc only when given", () => {
    expect(outOfBandElement(url, "Lagebild").toString()).toBe(
      `<x xmlns="${OOB}"><url>${url}</url><desc>Lagebild</desc></x>`,
    );
    expect(outOfBandElement(url).toString()).toBe(`<x xmlns="${OOB}"><url>${url}</url></x>`);
  });

  it("escapes the URL and reads back what it built", () => {
    const odd = "https://files.example/a?b=1&c=<2>";
    const element = outOfBandElement(odd, "a & b");
    expect(element.toString()).toContain("<url>https://files.example/a?b=1&amp;c=&lt;2&gt;</url>");
    expect(outOfBandOf(message(element))).toEqual([{ url: odd, desc: "a & b" }]);
  });
});
