import { describe, expect, it } from "vitest";
import { toStashcatText } from "../../../bridges/stashcat/toStashcatText.js";
import { fromStashcatMessage } from "../../../bridges/stashcat/fromStashcatMessage.js";
import type { Delivery } from "../../../schemas/types.js";
import { validateEvent } from "../../../schemas/contract/schemas.js";

const delivery: Delivery = {
  specVersion: "1",
  id: "d-1",
  event: {
    specVersion: "1",
    id: "event-00000001",
    type: "message.created",
    source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol" },
    sender: { userId: "weber@bpol", displayName: "Weber" },
    content: { body: "Lage **ruhig**\n# keine Überschrift" },
    timestamp: "2026-12-07T10:00:00.000Z",
  },
  target: { network: "stashcat", instance: "ni", conversation: "channel:1001", agency: "polizei-ni" },
  senderAgency: { id: "bpol", name: "Bundespolizei", country: "DE" },
  marking: { id: "DE-VS-NFD", label: "VS-NfD" },
};

describe("toStashcatText", () => {
  it("toStashcatText - a bold 'Name (Agency):' header, the marking, and the text shown as written", () => {
    expect(toStashcatText(delivery, { fromGateway: false, missingFiles: [] })).toBe(
      "**Weber (Bundespolizei):** \\[VS-NfD\\] Lage \\*\\*ruhig\\*\\*\n\\# keine Überschrift",
    );
  });

  it("toStashcatText - a correction says so, files not carried are named, the gateway's notice is fedgate's", () => {
    const edited: Delivery = { ...delivery, event: { ...delivery.event, type: "message.edited" } };
    const { marking: _marking, ...unmarked } = edited;
    expect(toStashcatText(unmarked, { fromGateway: true, missingFiles: ["plan.pdf"] })).toBe(
      "**fedgate:** (corrected) Lage \\*\\*ruhig\\*\\*\n\\# keine Überschrift\n\\[file not carried: plan.pdf\\]",
    );
  });

  it("toStashcatText - a name cannot forge a header or a link", () => {
    const forged: Delivery = {
      ...delivery,
      event: { ...delivery.event, sender: { userId: "x", displayName: "Chef:** [hier](http://evil)" } },
    };
    expect(toStashcatText(forged, { fromGateway: false, missingFiles: [] })).toMatch(
      /^\*\*Chef:\\\*\\\* \\\[hier\\\]\(http:\/\/evil\) \(Bundespolizei\):\*\* /,
    );
  });
});

describe("fromStashcatMessage", () => {
  const message = {
    id: 77,
    chat: { type: "channel" as const, id: 1001 },
    senderId: 4711,
    senderName: "POK Meyer",
    time: 1796637600,
    markdown: true,
  };

  it("fromStashcatMessage - a message becomes a valid event: text, its markdown as HTML, files and reply", () => {
    const event = fromStashcatMessage(message, {
      id: "event-00000077",
      instance: "ni",
      conversation: "channel:1001",
      text: "Lage **ruhig**",
      attachments: [],
      replyTo: "event-00000001",
    });
    expect(validateEvent(event)).toBe(event);
    expect(event).toMatchObject({
      type: "message.created",
      source: { network: "stashcat", instance: "ni", conversation: "channel:1001", messageId: "77" },
      sender: { userId: "4711", displayName: "POK Meyer" },
      timestamp: "2026-12-07T10:00:00.000Z",
      content: { body: "Lage **ruhig**", html: "<p>Lage <strong>ruhig</strong></p>" },
      relations: { replyTo: "event-00000001" },
    });
  });

  it("fromStashcatMessage - plain text has no HTML, and a message with neither text nor files is refused", () => {
    const plain = fromStashcatMessage(
      { ...message, markdown: false },
      { id: "event-00000078", instance: "ni", conversation: "channel:1001", text: "a*b*", attachments: [] },
    );
    expect(plain.content).toEqual({ body: "a*b*" });
    expect(plain.relations).toBeUndefined();
    expect(() =>
      fromStashcatMessage(message, {
        id: "event-00000079",
        instance: "ni",
        conversation: "channel:1001",
        text: "",
        attachments: [],
      }),
    ).toThrow(/neither text nor files/);
  });
});
