import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord, Delivery, NormalisedEvent } from "../../../schemas/types.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { auditRecordsIn, eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import {
  type Element,
  startProsodyOrSkip,
  stopClient,
  xml,
  xmppClient,
  type XmppClient,
} from "../../helpers/prosody.js";
import { NS } from "../../helpers/xmppNamespaces.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined || prosody === undefined)(
  "XMPP bridge - corrections, retractions, replies",
  () => {
    let bus: JetStreamBus;
    let bridge: RunningXmppBridge;
    let officer: XmppClient;
    const heard: Element[] = [];
    const present = new Set<string>();
    const inbound: NormalisedEvent[] = [];
    let room = "";

    const body = (m: Element): string | null => m.getChildText("body");
    const stanzaIdOf = (m: Element): string | undefined =>
      m.getChildren("stanza-id", NS.sid).find((s) => s.attrs["by"] === room)?.attrs["id"];
    const say = (text: string, id: string, ...children: Element[]): Promise<void> =>
      officer.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, text), ...children));
    const fromTchap = (event: scene.EventFromClaire): Promise<unknown> =>
      scene.deliverFromClaire(bus, scene.roomTarget(room), event);

    beforeAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      room = `lage@${prosody.mucDomain}`;
      ({ bus, bridge, officer } = await scene.bridgedRoom(
        { natsUrl: nats.url, server: prosody, log, room, inbound, heard, present },
        {
          labels: [
            {
              marking: "DE-VS-NFD",
              displayMarking: "VS-NfD",
              ess: "MQYCAQQGASk=",
              fgcolor: "black",
              bgcolor: "yellow",
            },
            { marking: "DE-OFFEN", displayMarking: "OFFEN", ess: "MQYCAQEGASk=" },
          ],
        },
      ));
    });

    afterAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      await stopClient(officer);
      await bridge.stop();
      await bus.close();
      await prosody.stop();
      await nats.stop();
    });

    it("inbound - a correction (XEP-0308) becomes an edit of the right event", async () => {
      await say("Treffpunkt Nordtor", "w-1");
      const original = await eventually(() => inbound.find((e) => e.content?.body === "Treffpunkt Nordtor"));
      await say("Treffpunkt Südtor", "w-2", xml("replace", { xmlns: NS.correction, id: "w-1" }));
      const edit = await eventually(() => inbound.find((e) => e.content?.body === "Treffpunkt Südtor"));
      expect(edit.type).toBe("message.edited");
      expect(edit.relations?.replaces).toBe(original.id);
    });

    it("inbound - a retraction (XEP-0424) by stanza-id becomes a deletion of the right event", async () => {
      await say("Versehentlich gesendet", "w-3");
      const original = await eventually(() =>
        inbound.find((e) => e.content?.body === "Versehentlich gesendet"),
      );
      const echo = await eventually(() => heard.find((m) => body(m) === "Versehentlich gesendet"));
      const stanzaId = stanzaIdOf(echo);
      expect(stanzaId).toBeDefined();
      await officer.send(
        xml(
          "message",
          { to: room, type: "groupchat", id: "w-4" },
          xml("retract", { xmlns: NS.retract, id: stanzaId }),
        ),
      );
      const deletion = await eventually(() => inbound.find((e) => e.relations?.redacts === original.id));
      expect(deletion.type).toBe("message.deleted");
    });

    it("outbound - an edit, a reply and a deletion from Tchap point at the right messages in the room", async () => {
      await fromTchap({
        id: "c1a2b3c4-0001-4000-8000-000000000001",
        type: "message.created",
        content: { body: "Nous arrivons" },
      });
      const created = await eventually(() => heard.find((m) => body(m) === "Nous arrivons"));
      const createdId = created.getChild("origin-id", NS.sid)?.attrs["id"] ?? created.attrs["id"];
      const createdStanzaId = stanzaIdOf(created);

      await fromTchap({
        id: "c1a2b3c4-0001-4000-8000-000000000002",
        type: "message.edited",
        content: { body: "Nous arrivons à 15 h" },
        relations: { replaces: "c1a2b3c4-0001-4000-8000-000000000001" },
      });
      const edit = await eventually(() => heard.find((m) => body(m) === "Nous arrivons à 15 h"));
      expect(edit.getChild("replace", NS.correction)?.attrs["id"]).toBe(createdId);

      // A reply to what the officer wrote points at the room's stanza-id for it.
      await say("Wo genau?", "w-5");
      const question = await eventually(() => inbound.find((e) => e.content?.body === "Wo genau?"));
      const questionEcho = await eventually(() => heard.find((m) => body(m) === "Wo genau?"));
      await fromTchap({
        id: "c1a2b3c4-0001-4000-8000-000000000003",
        type: "message.created",
        content: { body: "Au poste frontière" },
        relations: { replyTo: question.id },
      });
      // For clients without XEP-0461 it quotes the question, marked as a fallback that others hide.
      const quote = "> Weber: Wo genau?\n";
      const reply = await eventually(() => heard.find((m) => body(m) === `${quote}Au poste frontière`));
      expect(reply.getChild("reply", NS.reply)?.attrs["id"]).toBe(stanzaIdOf(questionEcho));
      expect(reply.getChild("reply", NS.reply)?.attrs["to"]).toBe(`${room}/Weber`);
      expect(reply.getChild("fallback", NS.fallback)?.getChild("body")?.attrs).toMatchObject({
        start: "0",
        end: String(Array.from(quote).length),
      });

      await fromTchap({
        id: "c1a2b3c4-0001-4000-8000-000000000004",
        type: "message.deleted",
        relations: { redacts: "c1a2b3c4-0001-4000-8000-000000000001" },
      });
      const claire = `${room}/Claire Martin (Ministère de l'Intérieur)`;
      const retraction = await eventually(() =>
        heard.find((m) => m.attrs["from"] === claire && m.getChild("retract", NS.retract) !== undefined),
      );
      expect(retraction.getChild("retract", NS.retract)?.attrs["id"]).toBe(createdStanzaId);
    });

    it("outbound - a deletion from Tchap of an officer's message is not sent as a retraction by someone else", async () => {
      await say("Bitte nicht löschen", "w-keep");
      const kept = await eventually(() => inbound.find((e) => e.content?.body === "Bitte nicht löschen"));
      const echo = await eventually(() => heard.find((m) => body(m) === "Bitte nicht löschen"));
      await fromTchap({
        id: "c1a2b3c4-0001-4000-8000-000000000009",
        type: "message.deleted",
        relations: { redacts: kept.id },
      });
      // What follows is delivered: the deletion was passed over, not stuck.
      await fromTchap({
        id: "c1a2b3c4-0001-4000-8000-000000000010",
        type: "message.created",
        content: { body: "Message suivant" },
      });
      await eventually(() => heard.find((m) => body(m) === "Message suivant"));
      expect(heard.some((m) => m.getChild("retract", NS.retract)?.attrs["id"] === stanzaIdOf(echo))).toBe(
        false,
      );
      // The audit trail says why it was not shown, rather than taking it as delivered.
      const unsupported: AuditRecord[] = [];
      const following = await bus.follow("FEDGATE_AUDIT", subjects.audit("unsupported"), "start", (m) => {
        unsupported.push(...auditRecordsIn(m.data));
      });
      const record = await eventually(() =>
        unsupported.find((r) => r.eventId === "c1a2b3c4-0001-4000-8000-000000000009"),
      );
      expect(record).toMatchObject({
        decision: "unsupported",
        reason: "unsupported-by-network",
        eventType: "message.deleted",
        decidedBy: "xmpp-bpol",
      });
      await following.stop();
    });

    it("inbound - a reply (XEP-0461) points at the right event, without its fallback quote", async () => {
      const answered = await eventually(() =>
        heard.find((m) => body(m)?.endsWith("Au poste frontière") === true),
      );
      const quote = "> Claire Martin: Au poste frontière\n";
      await say(
        `${quote}Verstanden`,
        "w-6",
        xml("reply", { xmlns: NS.reply, id: stanzaIdOf(answered), to: String(answered.attrs["from"]) }),
        xml(
          "fallback",
          { xmlns: NS.fallback, for: NS.reply },
          xml("body", { start: "0", end: String(Array.from(quote).length) }),
        ),
      );
      const reply = await eventually(() => inbound.find((e) => e.content?.body === "Verstanden"));
      expect(reply.relations?.replyTo).toBe("c1a2b3c4-0001-4000-8000-000000000003");
    });

    it("inbound - reactions (XEP-0444) arrive as a whole set and leave as what was added and removed", async () => {
      const claire = await eventually(() =>
        heard.find((m) => body(m)?.endsWith("Au poste frontière") === true),
      );
      const react = (id: string, ...keys: string[]): Promise<void> =>
        officer.send(
          xml(
            "message",
            { to: room, type: "groupchat", id },
            xml(
              "reactions",
              { xmlns: NS.reactions, id: stanzaIdOf(claire) },
              ...keys.map((k) => xml("reaction", {}, k)),
            ),
          ),
        );
      const reactionsTo = (): NormalisedEvent[] =>
        inbound.filter((e) => e.relations?.reactsTo === "c1a2b3c4-0001-4000-8000-000000000003");
      await react("r-1", "👍");
      await eventually(() => (reactionsTo().length === 1 ? true : undefined));
      await react("r-2", "👀");
      await eventually(() => (reactionsTo().length === 3 ? true : undefined));
      expect(reactionsTo().map((e) => `${e.type} ${e.content?.reaction ?? ""}`)).toEqual([
        "reaction.added 👍",
        "reaction.added 👀",
        "reaction.removed 👍",
      ]);
    });

    it("outbound - reactions from Tchap, one at a time, reach the room as the puppet's whole set", async () => {
      const question = await eventually(() => inbound.find((e) => e.content?.body === "Wo genau?"));
      const questionEcho = await eventually(() => heard.find((m) => body(m) === "Wo genau?"));
      const react = (
        n: number,
        type: "reaction.added" | "reaction.removed",
        reaction: string,
      ): Promise<unknown> =>
        fromTchap({
          id: `c1a2b3c4-0002-4000-8000-00000000000${n}`,
          type,
          content: { reaction },
          relations: { reactsTo: question.id },
        });
      const sets = (): string[][] =>
        heard
          .map((m) => m.getChild("reactions", NS.reactions))
          .filter((r) => r !== undefined && r.attrs["id"] === stanzaIdOf(questionEcho))
          .map((r) => (r?.getChildren("reaction") ?? []).map((x) => x.text()));
      await react(1, "reaction.added", "👍");
      await react(2, "reaction.added", "🙏");
      await react(3, "reaction.removed", "👍");
      await eventually(() => (sets().length === 3 ? true : undefined));
      expect(sets()).toEqual([["👍"], ["👍", "🙏"], ["🙏"]]);
    });

    it("labels - a message labelled VS-NfD (XEP-0258) carries that marking onto the bus", async () => {
      const label = xml("securitylabel", { xmlns: NS.label }, xml("displaymarking", {}, "VS-NfD"));
      await say("Fahndungsfoto folgt", "l-1", label);
      const event = await eventually(() => inbound.find((e) => e.content?.body === "Fahndungsfoto folgt"));
      expect(event.marking).toBe("DE-VS-NFD");
    });

    it("labels - a label fedgate may not carry is refused with a stanza error, and nothing is published", async () => {
      const label = xml("securitylabel", { xmlns: NS.label }, xml("displaymarking", {}, "GEHEIM"));
      await say("Streng geheim", "l-2", label);
      const error = await eventually(() =>
        heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === "l-2"),
      );
      expect(error.getChild("error")?.getChild("policy-violation", NS.stanzas)).toBeDefined();
      expect(error.getChild("error")?.getChildText("text", NS.stanzas)).toContain("GEHEIM");
      await say("danach normal", "l-3");
      await eventually(() => inbound.find((e) => e.content?.body === "danach normal"));
      expect(inbound.some((e) => e.content?.body === "Streng geheim")).toBe(false);
    });

    describe("labels that do not add up", () => {
      const ess = (value: string): Element =>
        xml("label", {}, xml("esssecuritylabel", { xmlns: "urn:xmpp:sec-label:ess:0" }, value));
      const cases: [string, () => Element[]][] = [
        [
          "an ESS label the table does not list, shown with a display marking it does",
          () => [xml("securitylabel", { xmlns: NS.label }, xml("displaymarking", {}, "VS-NfD"), ess("AAAA"))],
        ],
        [
          "a listed ESS label shown with another entry's display marking",
          () => [
            xml(
              "securitylabel",
              { xmlns: NS.label },
              xml("displaymarking", {}, "OFFEN"),
              ess("MQYCAQQGASk="),
            ),
          ],
        ],
        [
          "two labels, the first one listed",
          () => [
            xml("securitylabel", { xmlns: NS.label }, xml("displaymarking", {}, "OFFEN")),
            xml("securitylabel", { xmlns: NS.label }, xml("displaymarking", {}, "GEHEIM")),
          ],
        ],
        [
          "a listed label with an equivalent label fedgate cannot check",
          () => [
            xml(
              "securitylabel",
              { xmlns: NS.label },
              xml("displaymarking", {}, "VS-NfD"),
              ess("MQYCAQQGASk="),
              xml(
                "equivalentlabel",
                {},
                xml("esssecuritylabel", { xmlns: "urn:xmpp:sec-label:ess:0" }, "AAAA"),
              ),
            ),
          ],
        ],
        [
          "a label in a format other than ESS",
          () => [
            xml(
              "securitylabel",
              { xmlns: NS.label },
              xml("displaymarking", {}, "VS-NfD"),
              xml("label", {}, xml("other", { xmlns: "urn:example:labels" }, "VS-NfD")),
            ),
          ],
        ],
      ];
      let n = 0;
      it.each(cases)(
        "labels - %s is refused with a stanza error, and nothing is published",
        async (_, labels) => {
          const id = `l-bad-${++n}`;
          const text = `Falsch gekennzeichnet ${n}`;
          await say(text, id, ...labels());
          const error = await eventually(() =>
            heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === id),
          );
          expect(error.getChild("error")?.getChild("policy-violation", NS.stanzas)).toBeDefined();
          await say(`danach ${n}`, `${id}-next`);
          await eventually(() => inbound.find((e) => e.content?.body === `danach ${n}`));
          expect(inbound.some((e) => e.content?.body === text)).toBe(false);
        },
      );
    });

    it("labels - a listed ESS label is read, with or without its display marking", async () => {
      const ess = xml(
        "label",
        {},
        xml("esssecuritylabel", { xmlns: "urn:xmpp:sec-label:ess:0" }, "MQYCAQEGASk="),
      );
      await say("Offen mit ESS", "l-ess-1", xml("securitylabel", { xmlns: NS.label }, ess));
      await say(
        "Offen mit beidem",
        "l-ess-2",
        xml("securitylabel", { xmlns: NS.label }, xml("displaymarking", {}, "offen"), ess),
      );
      const alone = await eventually(() => inbound.find((e) => e.content?.body === "Offen mit ESS"));
      const both = await eventually(() => inbound.find((e) => e.content?.body === "Offen mit beidem"));
      expect([alone.marking, both.marking]).toEqual(["DE-OFFEN", "DE-OFFEN"]);
    });

    it("labels - a marked delivery arrives with the label the table gives its marking", async () => {
      await scene.deliverFromClaire(
        bus,
        scene.roomTarget(room),
        {
          id: "c1a2b3c4-0003-4000-8000-000000000001",
          type: "message.created",
          content: { body: "Point de situation" },
          marking: "FR-DR",
        },
        { marking: { id: "DE-VS-NFD", label: "VS-NUR FÜR DEN DIENSTGEBRAUCH", original: "FR-DR" } },
      );
      const message = await eventually(() =>
        heard.find((m) => body(m)?.endsWith("Point de situation") === true),
      );
      const displayed = message.getChild("securitylabel", NS.label)?.getChild("displaymarking");
      expect(displayed?.text()).toBe("VS-NfD");
      expect(displayed?.attrs["bgcolor"]).toBe("yellow");
    });

    it("notices - the gateway's own notice is said by the bridge's bot, not by a puppet", async () => {
      const notice: Delivery = {
        specVersion: "1",
        id: "notice-test-1",
        event: {
          specVersion: "1",
          id: "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
          type: "notice",
          source: { network: "xmpp", instance: "bpol", conversation: room },
          sender: { userId: "fedgate", displayName: "fedgate" },
          content: { body: "Your message was not delivered to: Zoll" },
          timestamp: new Date().toISOString(),
        },
        target: scene.roomTarget(room),
      };
      await scene.publishToXmpp(bus, notice);
      const said = await eventually(() =>
        heard.find((m) => body(m) === "Your message was not delivered to: Zoll"),
      );
      expect(said.attrs["from"]).toBe(`${room}/fedgate`);
    });

    it("membership - a native member joining, renaming and leaving is published as joins and leaves", async () => {
      if (prosody === undefined) return;
      await prosody.addUser("meyer", "pw-meyer");
      const meyer = xmppClient(prosody, "meyer", "pw-meyer");
      await meyer.start();
      const membership = (): string[] =>
        // By nickname: the bot sees real JIDs only where the room shows them to it (non-anonymous rooms, or as moderator).
        inbound
          .filter(
            (e) =>
              e.type.startsWith("member.") && ["Meyer", "POK Meyer"].includes(e.sender.displayName ?? ""),
          )
          .map((e) => `${e.type} ${e.sender.displayName ?? ""}`);
      await meyer.send(xml("presence", { to: `${room}/Meyer` }, xml("x", { xmlns: NS.muc })));
      await eventually(() => (membership().length === 1 ? true : undefined), 10_000, "the join");
      await meyer.send(xml("presence", { to: `${room}/POK Meyer` }));
      await eventually(() => (membership().length === 3 ? true : undefined), 10_000, "the rename");
      await meyer.send(xml("presence", { to: `${room}/POK Meyer`, type: "unavailable" }));
      await eventually(() => (membership().length === 4 ? true : undefined), 10_000, "the leave");
      expect(membership()).toEqual([
        "member.joined Meyer",
        "member.left Meyer",
        "member.joined POK Meyer",
        "member.left POK Meyer",
      ]);
      await stopClient(meyer);
    });

    it("membership - a remote member who leaves takes their puppet out of the room", async () => {
      const claire = `${room}/Claire Martin (Ministère de l'Intérieur)`;
      const left: string[] = [];
      officer.on("stanza", (stanza) => {
        if (stanza.is("presence") && stanza.attrs["type"] === "unavailable")
          left.push(String(stanza.attrs["from"]));
      });
      await fromTchap({ id: "c1a2b3c4-0004-4000-8000-000000000001", type: "member.left" });
      await eventually(() => (left.includes(claire) ? true : undefined), 10_000, "Claire's puppet leaving");
    });
  },
);
