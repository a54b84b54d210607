import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { XmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { JetStreamBus } from "../../../gateway/bus/JetStreamBus.js";
import { subjects } from "../../../gateway/contract/subjects.js";
import { createLogger } from "../../../gateway/log.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
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
    let bridge: XmppBridge;
    let officer: XmppClient;
    const heard: Element[] = [];
    const present = new Set<string>();
    const inbound: NormalisedEvent[] = [];
    const deadLetters: string[] = [];
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
    });

    afterAll(async () => {
      if (nats === undefined || prosody === undefined) return;
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
      expect(body(first)).toBe("Alarmstufe\uFFFD 2");
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
  },
);
