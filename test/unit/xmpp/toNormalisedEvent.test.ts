import { describe, expect, it } from "vitest";
import { fromNativeId, toNativeMessage } from "../../../bridges/xmpp/messageIds.js";
import { MAX_ID_LENGTH } from "../../../bridges/xmpp/boundedId.js";
import {
  idsOf,
  isModeration,
  MAX_REACTIONS,
  moderatorOf,
  nickOf,
  occupantIdOf,
  reactionsOf,
  referencesOf,
  stanzaIdOf,
  toNormalisedEvent,
  withoutReplyFallback,
} from "../../../bridges/xmpp/toNormalisedEvent.js";
import { EARLIER_EDIT_MARK } from "../../../schemas/contract/earlierEdits.js";
import { quoteOf } from "../../../bridges/xmpp/toStanza.js";
import { xml, type XmlElement } from "../../../bridges/xmpp/XmppComponent.js";

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
    // What a puppet posted remembers the puppet, so that only it retracts the message.
    const posted = toNativeMessage({ originId: "p1", stanzaId: "room-18", author: "claire@bridge.example" });
    expect(fromNativeId(posted?.id ?? "").author).toBe("claire@bridge.example");
  });

  it("XMPP mapping - a moderator's retraction (XEP-0425), in both its forms, names the message and the moderator", () => {
    const current = xml(
      "message",
      { type: "groupchat", from: "lage@conference.example" },
      xml(
        "retract",
        { xmlns: "urn:xmpp:message-retract:1", id: "room-17" },
        xml("moderated", { xmlns: "urn:xmpp:message-moderate:1", by: "lage@conference.example/Chef" }),
      ),
    );
    const older = xml(
      "message",
      { type: "groupchat", from: "lage@conference.example" },
      xml(
        "apply-to",
        { xmlns: "urn:xmpp:fasten:0", id: "room-18" },
        xml(
          "moderated",
          { xmlns: "urn:xmpp:message-moderate:0", by: "lage@conference.example/Chef" },
          xml("retract", { xmlns: "urn:xmpp:message-retract:0" }),
        ),
      ),
    );
    expect(referencesOf(current).retracts).toBe("room-17");
    expect(referencesOf(older).retracts).toBe("room-18");
    // The room's own JID vouches for the moderation; an occupant's message with the same payload is none.
    expect(isModeration(current, "lage@conference.example")).toBe(true);
    expect(isModeration(older, "lage@conference.example")).toBe(true);
    expect(isModeration(current, "other@conference.example")).toBe(false);
    const byOccupant = xml(
      "message",
      { ...current.attrs, from: "lage@conference.example/Meyer" },
      ...current.children,
    );
    expect(isModeration(byOccupant, "lage@conference.example")).toBe(false);
    expect(moderatorOf(current)).toBe("lage@conference.example/Chef");
    expect(moderatorOf(older)).toBe("lage@conference.example/Chef");
    expect(
      moderatorOf(xml("message", {}, xml("retract", { xmlns: "urn:xmpp:message-retract:1", id: "x" }))),
    ).toBe(undefined);
  });

  it("XMPP mapping - occupant-id (XEP-0421) and nick (XEP-0172) are read, and empty ones ignored", () => {
    expect(
      occupantIdOf(xml("message", {}, xml("occupant-id", { xmlns: "urn:xmpp:occupant-id:0", id: "b64=" }))),
    ).toBe("b64=");
    expect(
      occupantIdOf(xml("message", {}, xml("occupant-id", { xmlns: "urn:xmpp:occupant-id:0", id: "" }))),
    ).toBe(undefined);
    expect(
      nickOf(xml("message", {}, xml("nick", { xmlns: "http://jabber.org/protocol/nick" }, " POK Weber "))),
    ).toBe("POK Weber");
    expect(nickOf(xml("message", {}, xml("nick", { xmlns: "http://jabber.org/protocol/nick" }, "  ")))).toBe(
      undefined,
    );
  });

  it("XMPP mapping - a reply's quote marks every line and is cut at 200 code points", () => {
    expect(quoteOf({ author: "Weber", jid: "r@c/Weber", text: "Zeile eins\nZeile zwei" })).toBe(
      "> Weber: Zeile eins\n> Zeile zwei\n",
    );
    const long = quoteOf({ author: "W", jid: "r@c/W", text: "👮".repeat(300) });
    expect(Array.from(long)).toHaveLength("> W: ".length + 200 + "…\n".length);
  });

  it("XMPP mapping - every id read from a stanza is bounded, in code points: a longer one is FG_NATIVE_INVALID", () => {
    const room = "lage@conference.example";
    // As long as allowed, in characters that take two UTF-16 units each.
    const longest = "🚓".repeat(MAX_ID_LENGTH);
    const tooLong = "a".repeat(MAX_ID_LENGTH + 1);
    const withId = (id: string): XmlElement[] => [
      xml("message", { id }),
      xml("message", {}, xml("origin-id", { xmlns: "urn:xmpp:sid:0", id })),
      xml("message", {}, xml("stanza-id", { xmlns: "urn:xmpp:sid:0", id, by: room })),
      xml("message", {}, xml("replace", { xmlns: "urn:xmpp:message-correct:0", id })),
      xml("message", {}, xml("retract", { xmlns: "urn:xmpp:message-retract:1", id })),
      xml(
        "message",
        {},
        xml(
          "apply-to",
          { xmlns: "urn:xmpp:fasten:0", id },
          xml("retract", { xmlns: "urn:xmpp:message-retract:0" }),
        ),
      ),
      xml("message", {}, xml("reply", { xmlns: "urn:xmpp:reply:0", id })),
      xml("message", {}, xml("reactions", { xmlns: "urn:xmpp:reactions:0", id })),
      xml("message", {}, xml("occupant-id", { xmlns: "urn:xmpp:occupant-id:0", id })),
    ];
    const readAll = (stanza: XmlElement): unknown[] => [
      idsOf(stanza, room),
      stanzaIdOf(stanza, room),
      referencesOf(stanza),
      reactionsOf(stanza),
      occupantIdOf(stanza),
    ];
    for (const stanza of withId(longest)) expect(JSON.stringify(readAll(stanza))).toContain(longest);
    for (const stanza of withId(tooLong)) {
      expect(() => readAll(stanza), stanza.toString().slice(0, 60)).toThrow(
        expect.objectContaining({ code: "FG_NATIVE_INVALID", transient: false }) as Error,
      );
    }
  });

  it("XMPP mapping - reactions are bounded: 20 a person, 64 code points each; more is FG_NATIVE_INVALID, never dropped", () => {
    const reacting = (...keys: string[]): XmlElement =>
      xml(
        "message",
        {},
        xml(
          "reactions",
          { xmlns: "urn:xmpp:reactions:0", id: "room-17" },
          ...keys.map((k) => xml("reaction", {}, k)),
        ),
      );
    const twenty = Array.from({ length: MAX_REACTIONS }, (_, i) => `r${i}`);
    expect(reactionsOf(reacting(...twenty))?.keys).toEqual(twenty);
    expect(() => reactionsOf(reacting(...twenty, "one more"))).toThrow(/21 reactions/);
    // 64 code points, 128 UTF-16 units: allowed, as the event schema counts code points.
    expect(reactionsOf(reacting("🚓".repeat(64)))?.keys).toEqual(["🚓".repeat(64)]);
    expect(() => reactionsOf(reacting("👍", "🚓".repeat(65)))).toThrow(
      expect.objectContaining({ code: "FG_NATIVE_INVALID" }) as Error,
    );
    expect(reactionsOf(reacting("👍", " ", "👍"))?.keys).toEqual(["👍"]);
  });
});

describe("XMPP mapping - what refers to a message fedgate no longer knows", () => {
  const context = {
    instance: "bpol",
    conversation: "lage@conference.bpol.localhost",
    sender: { userId: "weber@bpol.localhost", displayName: "Weber" },
    messageId: "m-2",
    newEventId: () => "event-0000000002",
    maxBodyBytes: 65_536,
  };

  it("XMPP mapping - a reply to an unknown message loses its quote too: what it quotes was never checked", () => {
    const quote = "> Meyer: Zugriff um 6 Uhr\n";
    const stanza = xml(
      "message",
      { type: "groupchat" },
      xml("body", {}, `${quote}Verstanden`),
      xml("reply", { xmlns: "urn:xmpp:reply:0", id: "forgotten-stanza-id" }),
      xml(
        "fallback",
        { xmlns: "urn:xmpp:fallback:0", for: "urn:xmpp:reply:0" },
        xml("body", { start: "0", end: String(Array.from(quote).length) }),
      ),
    );
    const event = toNormalisedEvent(stanza, context);
    expect(event?.content).toEqual({ body: "Verstanden" });
    expect(event?.relations).toBeUndefined();
  });

  it("XMPP mapping - a correction of an unknown message is a new message, marked as an edit of an earlier one", () => {
    const stanza = xml(
      "message",
      { type: "groupchat" },
      xml("body", {}, "Treffpunkt 11 Uhr"),
      xml("replace", { xmlns: "urn:xmpp:message-correct:0", id: "forgotten-origin-id" }),
    );
    const event = toNormalisedEvent(stanza, { ...context, correctsForgotten: true });
    expect(event?.type).toBe("message.created");
    expect(event?.content).toEqual({ body: `${EARLIER_EDIT_MARK} Treffpunkt 11 Uhr` });
    expect(event?.relations).toBeUndefined();
  });
});
