import { describe, expect, it } from "vitest";
import { markingOf } from "../../../bridges/xmpp/securityLabels.js";
import { xml, type XmlElement } from "../../../bridges/xmpp/XmppComponent.js";

const NS_LABEL = "urn:xmpp:sec-label:0";
const NS_ESS = "urn:xmpp:sec-label:ess:0";
const table = [{ marking: "DE-VS-NFD", displayMarking: "VS-NfD", ess: "MQYCAQQGASk=" }];
const labelled = (...parts: XmlElement[]): XmlElement =>
  xml("message", {}, xml("securitylabel", { xmlns: NS_LABEL }, ...parts));
const ess = (value: string): XmlElement =>
  xml("label", {}, xml("esssecuritylabel", { xmlns: NS_ESS }, value));

describe("labels - security labels (XEP-0258) read against the table", () => {
  it("labels - a display marking alone, an ESS label alone, or both agreeing, stand for the marking", () => {
    expect(markingOf(labelled(xml("displaymarking", {}, "vs-nfd")), table)).toBe("DE-VS-NFD");
    expect(markingOf(labelled(ess("MQYCAQQGASk=")), table)).toBe("DE-VS-NFD");
    expect(markingOf(labelled(xml("displaymarking", {}, "VS-NfD"), ess("MQYCAQQGASk=")), table)).toBe(
      "DE-VS-NFD",
    );
    // An empty label element adds nothing to the display marking.
    expect(markingOf(labelled(xml("displaymarking", {}, "VS-NfD"), xml("label", {})), table)).toBe(
      "DE-VS-NFD",
    );
    expect(markingOf(xml("message", {}), table)).toBeUndefined();
  });

  it("labels - a refusal repeats at most 64 characters of what the sender wrote", () => {
    const long = "G".repeat(10_000);
    let message = "";
    try {
      markingOf(labelled(xml("displaymarking", {}, long), ess(long)), table);
    } catch (error) {
      expect(error).toMatchObject({ code: "FG_NATIVE_INVALID", transient: false });
      message = (error as Error).message;
    }
    expect(message).toContain("G".repeat(64));
    expect(message).not.toContain("G".repeat(65));
  });
});
