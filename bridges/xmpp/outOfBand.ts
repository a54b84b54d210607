/**
 * Out-of-band data (XEP-0066, jabber:x:oob): how XMPP clients announce a shared file, as an `x` element
 * with the file's URL next to a body that repeats the URL.
 */
import { NS } from "./namespaces.js";
import { xml, type XmlElement } from "./XmppComponent.js";

export interface OutOfBand {
  url: string;
  desc?: string;
}

function isHttp(url: string): boolean {
  try {
    const protocol = new URL(url).protocol;
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

/**
 * The files a stanza announces, in order. Entries without a URL, or with one that is not http(s), are left
 * out: the bridge can fetch nothing else, and must not try (file: or internal schemes).
 */
export function outOfBandOf(stanza: XmlElement): OutOfBand[] {
  const found: OutOfBand[] = [];
  for (const x of stanza.getChildren("x", NS.oob)) {
    const url = x.getChildText("url")?.trim() ?? "";
    if (!isHttp(url)) continue;
    const desc = x.getChildText("desc")?.trim() ?? "";
    found.push(desc === "" ? { url } : { url, desc });
  }
  return found;
}

/** The `x` element announcing one file. */
export function outOfBandElement(url: string, desc?: string): XmlElement {
  return xml(
    "x",
    { xmlns: NS.oob },
    xml("url", {}, url),
    desc === undefined || desc === "" ? undefined : xml("desc", {}, desc),
  );
}
