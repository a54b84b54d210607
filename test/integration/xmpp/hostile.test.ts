import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import {
  type Element,
  linkRoom,
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
const logLines: string[] = [];
const log = createLogger(
  "info",
  "xmpp-hostile-test",
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

/** What occupants send that no honest client would: each reproduced against a real Prosody. */
describe.skipIf(nats === undefined || prosody === undefined)(
  "XMPP bridge - hostile stanzas against a real Prosody",
  () => {
    let bus: JetStreamBus;
    let bridge: RunningXmppBridge;
    let officer: XmppClient;
    /** A second officer in the room, who tries to act on Weber's messages. */
    let meyer: XmppClient;
    const heard: Element[] = [];
    const meyerHeard: Element[] = [];
    const present = new Set<string>();
    const inbound: NormalisedEvent[] = [];
    const deadLetters: string[] = [];
    const others: XmppClient[] = [];
    let room = "";
    let n = 0;

    const body = (m: Element): string | null => m.getChildText("body");
    const stanzaIdOf = (m: Element): string | undefined =>
      m.getChildren("stanza-id", NS.sid).find((s) => s.attrs["by"] === room)?.attrs["id"];
    const send = (client: XmppClient, attrs: Record<string, string>, ...children: Element[]): Promise<void> =>
      client.send(xml("message", { to: room, type: "groupchat", ...attrs }, ...children));
    /** The stanza error a sender's client received for its message `id`. */
    const refusalOf = (hearing: Element[], id: string): Promise<Element> =>
      eventually(
        () => hearing.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === id),
        10_000,
        `the refusal of ${id.slice(0, 40)}`,
      );

    const fromTchap = (event: Omit<scene.EventFromClaire, "id">): Promise<NormalisedEvent> =>
      scene.deliverFromClaire(bus, scene.roomTarget(room), {
        id: `c1a2b3c4-0009-4000-8000-${String(++n).padStart(12, "0")}`,
        ...event,
      });

    /** A message Weber writes, once bridged: its event and the room's echo of it. */
    async function weberSays(text: string, id: string): Promise<{ event: NormalisedEvent; echo: Element }> {
      await send(officer, { id }, xml("body", {}, text), xml("origin-id", { xmlns: NS.sid, id }));
      const event = await eventually(() =>
        inbound.find((e) => e.type === "message.created" && e.content?.body === text),
      );
      const echo = await eventually(() => heard.find((m) => body(m) === text && stanzaIdOf(m) !== undefined));
      return { event, echo };
    }

    /** The room still bridges: a message after the hostile one reaches the bus. */
    async function stillBridging(): Promise<void> {
      const probe = `still there ${Math.random()}`;
      await send(officer, {}, xml("body", {}, probe));
      await eventually(
        () => inbound.find((e) => e.content?.body === probe),
        10_000,
        "bridging after bad input",
      );
    }

    /** Logs `localpart` in and has them join the room (or `where`) as `nick`; what they hear goes to `hearing`. */
    async function occupant(
      localpart: string,
      nick: string,
      hearing: Element[] = [],
      where = room,
    ): Promise<XmppClient> {
      if (prosody === undefined) throw new Error("no Prosody");
      await prosody.addUser(localpart, `pw-${localpart}`);
      const client = xmppClient(prosody, localpart, `pw-${localpart}`, `r${others.length}`);
      others.push(client);
      client.on("stanza", (stanza) => {
        if (stanza.is("message")) hearing.push(stanza);
      });
      await client.start();
      await scene.joinRoom(client, where, nick);
      return client;
    }

    beforeAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      room = `lage@${prosody.mucDomain}`;
      ({ bus, bridge, officer } = await scene.bridgedRoom({
        natsUrl: nats.url,
        server: prosody,
        log,
        room,
        inbound,
        heard,
        present,
      }));
      await bus.follow("FEDGATE_DEADLETTER", subjects.deadLetterAll, "start", (m) => {
        deadLetters.push(Buffer.from(m.data).toString("utf8"));
      });
      meyer = await occupant("meyer", "Meyer", meyerHeard);
    });

    afterAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      for (const client of others) await stopClient(client);
      await stopClient(officer);
      await bridge.stop();
      await bus.close();
      await prosody.stop();
      await nats.stop();
    });

    describe("over-long ids", () => {
      const long = "a".repeat(4000);
      const cases: [string, () => Element[], Record<string, string>][] = [
        ["an origin-id", () => [xml("origin-id", { xmlns: NS.sid, id: long })], {}],
        ["an id attribute", () => [], { id: long }],
        ["a correction", () => [xml("replace", { xmlns: NS.correction, id: long })], {}],
        ["a retraction", () => [xml("retract", { xmlns: NS.retract, id: long })], {}],
        [
          "an older retraction (fastening)",
          () => [xml("apply-to", { xmlns: NS.fasten, id: long }, xml("retract", { xmlns: NS.retractV0 }))],
          {},
        ],
        ["a reply", () => [xml("reply", { xmlns: NS.reply, id: long, to: `${room}/Weber` })], {}],
      ];

      it.each(cases)(
        "ids - %s naming a 4,000-character id is refused, the sender told, and the room goes on",
        async (what, children, attrs) => {
          const id = attrs["id"] ?? `long-${++n}`;
          const text = `Langer Bezeichner ${n}`;
          await send(officer, { id, ...attrs }, xml("body", {}, text), ...children());
          const refusal = await refusalOf(heard, id);
          // Refused for good: sending it again cannot help.
          expect(refusal.getChild("error")?.attrs["type"]).toBe("cancel");
          expect(refusal.getChild("error")?.getChildText("text", NS.stanzas)).toMatch(/longer than/);
          await eventually(() =>
            logLines.find((l) => l.includes("FG_NATIVE_INVALID") && l.includes("longer than")),
          );
          await stillBridging();
          expect(
            inbound.some((e) => e.content?.body === text),
            what,
          ).toBe(false);
        },
      );

      it("ids - reactions naming a 4,000-character id are refused, the sender told, and the room goes on", async () => {
        const id = `long-reactions-${++n}`;
        await send(
          officer,
          { id },
          xml("reactions", { xmlns: NS.reactions, id: long }, xml("reaction", {}, "👍")),
        );
        const refusal = await refusalOf(heard, id);
        expect(refusal.getChild("error")?.attrs["type"]).toBe("cancel");
        await stillBridging();
      });
    });

    it("outbound - a delivery whose body and sender's name hold U+0007 reaches the room readable, and the next one follows", async () => {
      const sender = { userId: "@bernard.petit:tchap.localhost", displayName: "Bernard\u0007 Petit" };
      await fromTchap({ type: "message.created", sender, content: { body: "Alarmstufe\u0007 2" } });
      await fromTchap({ type: "message.created", sender, content: { body: "Alarmstufe 3" } });
      const first = await eventually(() => heard.find((m) => body(m)?.startsWith("Alarmstufe") === true));
      // The bridge kit drops what XML forbids from every delivery; the component's write would replace it.
      expect(body(first)).toBe("Alarmstufe 2");
      expect(first.attrs["from"]).toBe(`${room}/Bernard Petit (Ministère de l'Intérieur)`);
      await eventually(() => heard.find((m) => body(m) === "Alarmstufe 3"));
      expect(deadLetters.filter((l) => l.includes("Alarmstufe"))).toEqual([]);
    });

    describe("reactions", () => {
      let target: Element;
      let targetEvent: string;
      const reactionsTo = (): NormalisedEvent[] =>
        inbound.filter((e) => e.relations?.reactsTo === targetEvent);
      const react = (id: string, keys: string[]): Promise<void> =>
        send(
          officer,
          { id },
          xml(
            "reactions",
            { xmlns: NS.reactions, id: stanzaIdOf(target) },
            ...keys.map((k) => xml("reaction", {}, k)),
          ),
        );

      beforeAll(async () => {
        if (nats === undefined || prosody === undefined) return;
        targetEvent = (await fromTchap({ type: "message.created", content: { body: "Reagiert bitte" } })).id;
        target = await eventually(() =>
          heard.find((m) => body(m) === "Reagiert bitte" && stanzaIdOf(m) !== undefined),
        );
      });

      it("reactions - 2,000 reactions in one stanza are refused, the sender told, and not one is published", async () => {
        const keys = Array.from({ length: 2000 }, (_, i) => `r${i}`);
        await react("many-reactions", keys);
        const refusal = await refusalOf(heard, "many-reactions");
        expect(refusal.getChild("error")?.getChildText("text", NS.stanzas)).toMatch(/reactions/);
        await stillBridging();
        expect(reactionsTo()).toEqual([]);
      });

      it("reactions - a reaction longer than 64 code points is refused, the sender told", async () => {
        await react("long-reaction", ["👍", "🚓".repeat(65)]);
        await refusalOf(heard, "long-reaction");
        await stillBridging();
        expect(reactionsTo()).toEqual([]);
      });

      it("reactions - a person's set within the bound still arrives, one event per reaction", async () => {
        await react("few-reactions", ["👍", "👀", "🚓"]);
        await eventually(() => (reactionsTo().length === 3 ? true : undefined));
      });

      it("reactions - a remote person's reactions beyond 20 on one message are not sent; their set stops there", async () => {
        const sets = (): string[][] =>
          heard
            .filter((m) => m.attrs["from"] === `${room}/Claire Martin (Ministère de l'Intérieur)`)
            .map((m) => m.getChild("reactions", NS.reactions))
            .filter((r) => r !== undefined && r.attrs["id"] === stanzaIdOf(target))
            .map((r) => (r?.getChildren("reaction") ?? []).map((x) => x.text()));
        for (let i = 1; i <= 21; i++) {
          await fromTchap({
            type: "reaction.added",
            content: { reaction: `+${i}` },
            relations: { reactsTo: targetEvent },
          });
        }
        await fromTchap({ type: "message.created", content: { body: "Fin des réactions" } });
        await eventually(() => heard.find((m) => body(m) === "Fin des réactions"));
        expect(sets()).toHaveLength(20);
        expect(sets().at(-1)).toHaveLength(20);
        expect(sets().flat()).not.toContain("+21");
      });
    });

    describe("relations tied to their author", () => {
      it("relations - another occupant's correction of Weber's message is refused, the sender told", async () => {
        const { event } = await weberSays("Treffpunkt Nordtor 1", "weber-own-1");
        await send(
          meyer,
          { id: "meyer-replace-1" },
          xml("body", {}, "Treffpunkt Südtor (gefälscht)"),
          xml("replace", { xmlns: NS.correction, id: "weber-own-1" }),
        );
        const refusal = await refusalOf(meyerHeard, "meyer-replace-1");
        expect(refusal.getChild("error")?.getChild("forbidden", NS.stanzas)).toBeDefined();
        await stillBridging();
        expect(inbound.some((e) => e.relations?.replaces === event.id)).toBe(false);
      });

      it("relations - another occupant's retraction of Weber's message is refused, the sender told", async () => {
        const { event, echo } = await weberSays("Bitte stehen lassen", "weber-own-2");
        await send(
          meyer,
          { id: "meyer-retract-1" },
          xml("retract", { xmlns: NS.retract, id: stanzaIdOf(echo) }),
        );
        const refusal = await refusalOf(meyerHeard, "meyer-retract-1");
        expect(refusal.getChild("error")?.getChild("forbidden", NS.stanzas)).toBeDefined();
        await stillBridging();
        expect(inbound.some((e) => e.relations?.redacts === event.id)).toBe(false);
      });

      it("relations - an occupant cannot correct what a remote person's puppet wrote", async () => {
        const claires = await fromTchap({ type: "message.created", content: { body: "Rendez-vous à 8 h" } });
        const posted = await eventually(() => heard.find((m) => body(m) === "Rendez-vous à 8 h"));
        const postedId = posted.getChild("origin-id", NS.sid)?.attrs["id"] ?? "";
        await send(
          officer,
          { id: "weber-replace-claire" },
          xml("body", {}, "Rendez-vous à 9 h"),
          xml("replace", { xmlns: NS.correction, id: postedId }),
        );
        await refusalOf(heard, "weber-replace-claire");
        await stillBridging();
        expect(inbound.some((e) => e.relations?.replaces === claires.id)).toBe(false);
      });

      it("relations - an id another message has in the room cannot be taken over as one's own origin-id", async () => {
        const { event, echo } = await weberSays("Mein Beitrag", "weber-own-3");
        const taken = stanzaIdOf(echo) ?? "";
        await send(
          meyer,
          { id: "meyer-hijack" },
          xml("body", {}, "Übernommen"),
          xml("origin-id", { xmlns: NS.sid, id: taken }),
        );
        await eventually(() => inbound.find((e) => e.content?.body === "Übernommen"));
        // Weber retracts his own message, by the id the room gave it: that message, not Meyer's, is deleted.
        await send(officer, { id: "weber-retract-own" }, xml("retract", { xmlns: NS.retract, id: taken }));
        const deletion = await eventually(() =>
          inbound.find((e) => e.type === "message.deleted" && e.sender.displayName === "Weber"),
        );
        expect(deletion.relations?.redacts).toBe(event.id);
      });

      it("relations - the author's own correction and retraction still go through", async () => {
        const { event, echo } = await weberSays("Treffpunkt Westtor", "weber-own-4");
        await send(
          officer,
          { id: "weber-own-5" },
          xml("body", {}, "Treffpunkt Osttor"),
          xml("replace", { xmlns: NS.correction, id: "weber-own-4" }),
        );
        const edit = await eventually(() => inbound.find((e) => e.content?.body === "Treffpunkt Osttor"));
        expect(edit.relations?.replaces).toBe(event.id);
        await send(
          officer,
          { id: "weber-own-6" },
          xml("retract", { xmlns: NS.retract, id: stanzaIdOf(echo) }),
        );
        await eventually(() => inbound.find((e) => e.relations?.redacts === event.id));
      });

      it("relations - an edit from Tchap of an officer's message is not sent as a correction by someone else", async () => {
        const { event } = await weberSays("Nur ich korrigiere das", "weber-own-7");
        await fromTchap({
          type: "message.edited",
          content: { body: "Corrigé par quelqu'un d'autre" },
          relations: { replaces: event.id },
        });
        // What follows is delivered: the edit was passed over, not stuck.
        await fromTchap({ type: "message.created", content: { body: "Après la correction" } });
        await eventually(() => heard.find((m) => body(m) === "Après la correction"));
        expect(heard.some((m) => body(m) === "Corrigé par quelqu'un d'autre")).toBe(false);
      });
    });

    it("nicks - a native occupant holding a remote person's nick does not keep that person out", async () => {
      const nick = "Amélie Durand (Ministère de l'Intérieur)";
      await occupant("schulz", nick);
      const sender = { userId: "@amelie.durand:tchap.localhost", displayName: "Amélie Durand" };
      const event = await fromTchap({ type: "message.created", sender, content: { body: "Je suis là" } });
      const message = await eventually(() => heard.find((m) => body(m) === "Je suis là"));
      expect(message.attrs["from"]).toBe(`${room}/${nick} [2]`);
      expect(deadLetters.some((l) => l.includes(event.id))).toBe(false);
    });

    it("nicks - a native occupant holding the bot's nick before the room is linked does not keep the room unbridged", async () => {
      if (prosody === undefined) return;
      const other = `wache@${prosody.mucDomain}`;
      const squatter = await occupant("wolf", "fedgate", [], other);
      await linkRoom(bus, "wache", other);
      // The bot joins under another nick; what the room says from then on reaches the bus.
      const probe = `Wache besetzt ${Math.random()}`;
      await eventually(async () => {
        await squatter.send(xml("message", { to: other, type: "groupchat" }, xml("body", {}, probe)));
        await new Promise((resolve) => setTimeout(resolve, 200));
        return inbound.find((e) => e.content?.body === probe && e.source.conversation === other);
      });
    });
  },
);
