/**
 * Fuzzing what the XMPP bridge reads from its server: group chat and direct messages with ids, corrections,
 * retractions, replies, reactions, labels, out-of-band links and occupant ids, through every reader the bridge
 * applies and the translation into a normalised event. 10,000 inputs; nothing but typed errors, and whatever is
 * accepted is an event the contract accepts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { toNativeMessage } from "../../../bridges/xmpp/messageIds.js";
import { NS } from "../../../bridges/xmpp/namespaces.js";
import { outOfBandOf } from "../../../bridges/xmpp/outOfBand.js";
import { markingOf } from "../../../bridges/xmpp/securityLabels.js";
import {
  idsOf,
  isModeration,
  moderatorOf,
  nickOf,
  occupantIdOf,
  reactionsOf,
  referencesOf,
  toNormalisedEvent,
} from "../../../bridges/xmpp/toNormalisedEvent.js";
import { xml, type XmlElement } from "../../../bridges/xmpp/XmppComponent.js";
import { FUZZ_RUNS, fuzz, hostileValue, mustMeetContract, mutated } from "../../helpers/fuzz.js";

const room = "einsatz@conference.bpol.localhost";
const labels = [{ marking: "DE-VS-NFD", displayMarking: "VS-NfD", ess: "MQYCAQQGASk=" }];

/** An element as data, so that the fuzzer can reach into names, attributes, texts and children. */
interface Node {
  name: string;
  attrs: Record<string, string>;
  children: Record<string, Node | string>;
}

function node(name: string, attrs: Record<string, string>, ...children: (Node | string)[]): Node {
  return { name, attrs, children: Object.fromEntries(children.map((c, i) => [`c${String(i)}`, c])) };
}

/** Any value as the text an XML parser could give (attribute values and text are strings). */
function text(value: unknown): string {
  if (typeof value === "string") return value;
  // JSON.stringify gives undefined for undefined, whatever its declared type says.
  return value === undefined ? "" : JSON.stringify(value);
}

/** Whatever the fuzzer made of a node, as the element a parser would have given the bridge. */
function toElement(value: unknown): XmlElement | string {
  if (typeof value !== "object" || value === null) return text(value);
  const { name, attrs, children } = value as Partial<Record<keyof Node, unknown>>;
  if (typeof name !== "string" || !/^[A-Za-z_][\w.-]*$/.test(name)) return JSON.stringify(value);
  const attributes =
    typeof attrs === "object" && attrs !== null
      ? Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, text(v)]))
      : {};
  const inner = typeof children === "object" && children !== null ? Object.values(children) : [];
  return xml(name, attributes, ...inner.map(toElement));
}

const message = node(
  "message",
  { type: "groupchat", from: `${room}/Weber`, to: "fedgate@bridge.bpol.localhost/bridge", id: "m1" },
  node("body", {}, "> Meyer: Lage?\nRuhig"),
  node("origin-id", { xmlns: NS.stanzaId, id: "origin-1" }),
  node("stanza-id", { xmlns: NS.stanzaId, id: "stanza-1", by: room }),
  node("occupant-id", { xmlns: NS.occupantId, id: "occ-1" }),
  node("reply", { xmlns: NS.reply, id: "stanza-0", to: `${room}/Meyer` }),
  node("fallback", { xmlns: NS.fallback, for: NS.reply }, node("body", { start: "0", end: "14" })),
  node(
    "securitylabel",
    { xmlns: NS.securityLabel },
    node("displaymarking", {}, "VS-NfD"),
    node("label", {}, node("esssecuritylabel", { xmlns: NS.essLabel }, "MQYCAQQGASk=")),
  ),
  node(
    "x",
    { xmlns: NS.oob },
    node("url", {}, "https://files.bpol.example/lage.png"),
    node("desc", {}, "Lage"),
  ),
);
const correction = node(
  "message",
  { type: "groupchat", from: `${room}/Weber`, id: "m2" },
  node("body", {}, "Korrektur"),
  node("replace", { xmlns: NS.correction, id: "origin-1" }),
);
const retraction = node(
  "message",
  { type: "groupchat", from: room, id: "m3" },
  node(
    "retract",
    { xmlns: NS.retract, id: "stanza-1" },
    node("moderated", { xmlns: NS.moderate, by: `${room}/Mod` }),
  ),
  node("apply-to", { xmlns: NS.fasten, id: "stanza-1" }, node("retract", { xmlns: NS.retractV0 })),
);
const reactions = node(
  "message",
  { type: "chat", from: "weber@bpol.localhost/pc", id: "m4" },
  node(
    "reactions",
    { xmlns: NS.reactions, id: "stanza-1" },
    node("reaction", {}, "👍"),
    node("reaction", {}, "✅"),
  ),
  node("nick", { xmlns: NS.nick }, "Weber"),
);

/** What the bridge reads from a stanza, and the event it makes of it. */
function take(raw: unknown): void {
  const stanza = toElement(raw);
  if (typeof stanza === "string") return;
  const ids = idsOf(stanza, room);
  referencesOf(stanza);
  reactionsOf(stanza);
  occupantIdOf(stanza);
  nickOf(stanza);
  moderatorOf(stanza);
  isModeration(stanza, room);
  const marking = markingOf(stanza, labels);
  const files = outOfBandOf(stanza);
  const event = toNormalisedEvent(stanza, {
    instance: "bpol",
    conversation: room,
    sender: { userId: "weber@bpol.localhost", displayName: "Weber" },
    messageId: toNativeMessage({ ...ids, author: "weber@bpol.localhost" })?.id,
    ...(marking === undefined ? {} : { marking }),
    attachments: files.slice(0, 16).map(() => ({
      name: "lage.png",
      mediaType: "image/png",
      size: 1,
      sha256: "0".repeat(64),
      url: "https://files.bpol.example/lage.png",
    })),
    newEventId: () => "0123456789abcdef0123456789abcdef",
    maxBodyBytes: 65_536,
  });
  mustMeetContract(event);
}

describe("fuzz - XMPP input", () => {
  it("fuzz - XMPP stanzas: typed errors only", async () => {
    const input = fc.oneof(
      {
        weight: 8,
        arbitrary: fc
          .constantFrom(message, correction, retraction, reactions)
          .chain((t) => mutated(t as unknown as Record<string, unknown>)),
      },
      { weight: 2, arbitrary: hostileValue },
    );
    const outcomes = await fuzz(input, (raw) => take(raw));
    expect(outcomes.accepted).toBeGreaterThan(FUZZ_RUNS / 20);
    // XMPP readers are lenient (an unknown child is ignored); refusals come from ids, labels and sizes.
    expect(outcomes.refused).toBeGreaterThan(FUZZ_RUNS / 100);
  });
});
