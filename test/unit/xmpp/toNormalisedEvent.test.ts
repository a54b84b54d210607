import { describe, expect, it } from "vitest";
import { fromNativeId, toNativeMessage } from "../../../bridges/xmpp/messageIds.js";
import { withoutReplyFallback } from "../../../bridges/xmpp/toNormalisedEvent.js";
import { xml } from "../../../bridges/xmpp/XmppComponent.js";

describe("XMPP mapping - pure parts", () => {
  it("XMPP mapping - a reply's fallback is cut by code points, so an emoji in the quote does not shift it", () => {
    const quote = "> 👮 Weber: Lage?\n";
    const stanza = xml(
      "message",
      {},
      xml("body", {}, `${quote}Ruhig`),
      xml(
        "fallback",
        { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:reply:0" },
        xml("body", { start: "0", end: String(Array.from(quote).length) }),
      ),
    );
    expect(withoutReplyFallback(stanza, `${quote}Ruhig`)).toBe("Ruhig");
  });

  it("XMPP mapping - fallback offsets outside the body leave the body as it is", () => {
    const stanza = xml(
      "message",
      {},
      xml(
        "fallback",
        { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:reply:0" },
        xml("body", { start: "5", end: "999" }),
      ),
    );
    expect(withoutReplyFallback(stanza, "kurz")).toBe("kurz");
  });

  it("XMPP mapping - both ids of a message survive the message map, and each finds it", () => {
    const native = toNativeMessage({ originId: "abc", stanzaId: "room-17" });
    expect(native?.aliases).toEqual(["room-17", "abc"]);
    expect(fromNativeId(native?.id ?? "")).toEqual({ originId: "abc", stanzaId: "room-17" });
    expect(fromNativeId("bare")).toEqual({ originId: "bare", stanzaId: "bare" });
    expect(toNativeMessage({})).toBeUndefined();
  });
});
