import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Endpoint, NormalisedEvent } from "../../../schemas/types.js";
import { puppetJid } from "../../../bridges/xmpp/puppetJid.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { NS } from "../../helpers/xmppNamespaces.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined || prosody === undefined)("XMPP bridge - direct chats", () => {
  let bus: JetStreamBus;
  let bridge: RunningXmppBridge;
  let links: LinkStore;
  let officer: XmppClient;
  const heard: Element[] = [];
  const present = new Set<string>();
  const inbound: NormalisedEvent[] = [];
  let room = "";
  let puppet = "";
  let officerJid = "";
  let direct: Endpoint;
  let n = 0;

  /** Publishes what the core would deliver: an event from Claire on Tchap, into `target`. */
  const fromClaire = (target: Endpoint, event: Omit<scene.EventFromClaire, "id">): Promise<NormalisedEvent> =>
    scene.deliverFromClaire(
      bus,
      target,
      { id: `claire-direct-${++n}`, ...event },
      { conversation: scene.claireSideOfDirect(officerJid) },
    );

  beforeAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    room = `lage@${prosody.mucDomain}`;
    ({ bus, bridge, officer, officerJid } = await scene.bridgedRoom(
      { natsUrl: nats.url, server: prosody, log, room, inbound, heard, present },
      { agency: "bpol" },
      { available: true },
    ));
    links = new LinkStore(await bus.keyValue(buckets.links));
    await links.start();
    puppet = scene.clairePuppet(prosody.componentDomain);
    direct = scene.directWithClaire(officerJid);
    // Claire speaks in the shared room first: that is how the officer meets her puppet.
    await fromClaire(scene.roomTarget(room), {
      type: "message.created",
      content: { body: "Bonjour à tous" },
    });
    await eventually(() => heard.find((m) => m.getChildText("body") === "Bonjour à tous"));
  });

  afterAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    await stopClient(officer);
    await bridge.stop();
    links.stop();
    await bus.close();
    await prosody.stop();
    await nats.stop();
  });

  it("XMPP bridge - a message to a puppet opens a direct chat with the person it stands for", async () => {
    await officer.send(
      xml(
        "message",
        { to: puppet, type: "chat", id: "dm-1" },
        xml("body", {}, "Claire, kurze Frage unter vier Augen"),
        xml("nick", { xmlns: NS.nick }, "POK Weber"),
      ),
    );
    const event = await eventually(() =>
      inbound.find((e) => e.content?.body === "Claire, kurze Frage unter vier Augen"),
    );
    expect(event.type).toBe("message.created");
    expect(event.source.conversation).toBe(direct.conversation);
    expect(event.sender).toEqual({ userId: officerJid, displayName: "POK Weber" });
    const link = links.match(direct)?.link;
    expect(link?.endpoints).toEqual([
      direct,
      {
        network: "matrix",
        instance: "tchap",
        conversation: scene.claireSideOfDirect(officerJid),
        agency: "dinum-mi",
        kind: "direct",
      },
    ]);
  });

  it("XMPP bridge - the answer comes from the same puppet JID, with her name and agency as nickname", async () => {
    await fromClaire(direct, { type: "message.created", content: { body: "Oui, je vous écoute" } });
    const answer = await eventually(() =>
      heard.find((m) => m.getChildText("body") === "Oui, je vous écoute"),
    );
    expect(answer.attrs["type"]).toBe("chat");
    expect(answer.attrs["from"]).toBe(`${puppet}/fedgate`);
    expect(answer.getChildText("nick", NS.nick)).toBe("Claire Martin (Ministère de l'Intérieur)");
  });

  it("XMPP bridge - a correction and a reaction in a direct chat refer to the officer's own message id", async () => {
    await officer.send(
      xml("message", { to: puppet, type: "chat", id: "dm-2" }, xml("body", {}, "Treffen um 10 Uhr")),
    );
    const original = await eventually(() => inbound.find((e) => e.content?.body === "Treffen um 10 Uhr"));
    await officer.send(
      xml(
        "message",
        { to: puppet, type: "chat", id: "dm-3" },
        xml("body", {}, "Treffen um 11 Uhr"),
        xml("replace", { xmlns: NS.correction, id: "dm-2" }),
      ),
    );
    const edit = await eventually(() => inbound.find((e) => e.content?.body === "Treffen um 11 Uhr"));
    expect(edit.type).toBe("message.edited");
    expect(edit.relations?.replaces).toBe(original.id);

    await fromClaire(direct, {
      type: "reaction.added",
      content: { reaction: "👍" },
      relations: { reactsTo: original.id },
    });
    const reactions = await eventually(() =>
      heard.find((m) => m.getChild("reactions", NS.reactions) !== undefined && m.attrs["type"] === "chat"),
    );
    expect(reactions.attrs["from"]).toBe(`${puppet}/fedgate`);
    expect(reactions.getChild("reactions", NS.reactions)?.attrs["id"]).toBe("dm-2");
    expect(reactions.getChild("reactions", NS.reactions)?.getChildText("reaction")).toBe("👍");
  });

  it("XMPP bridge - a puppet's vCard names the person and their agency", async () => {
    const result = await officer.iqCaller.request(
      xml("iq", { type: "get", to: puppet }, xml("vCard", { xmlns: NS.vcard })),
    );
    const card = result.getChild("vCard", NS.vcard);
    expect(card?.getChildText("FN")).toBe("Claire Martin");
    expect(card?.getChildText("NICKNAME")).toBe("Claire Martin (Ministère de l'Intérieur)");
    expect(card?.getChild("ORG")?.getChildText("ORGNAME")).toBe("Ministère de l'Intérieur");
  });

  it("XMPP bridge - a request the bridge does not serve is answered with service-unavailable", async () => {
    const answer = officer.iqCaller.request(
      xml("iq", { type: "get", to: puppet }, xml("query", { xmlns: "urn:example:unknown" })),
    );
    const error = (await answer.then(
      () => undefined,
      (e: unknown) => e,
    )) as { condition?: string } | undefined;
    expect(error?.condition).toBe("service-unavailable");
  });

  it("XMPP bridge - a message to a puppet that stands for no one is refused with item-not-found", async () => {
    const nobody = puppetJid("matrix", "tchap", "@nobody:tchap.localhost", {
      domain: prosody?.componentDomain ?? "",
    });
    await officer.send(
      xml("message", { to: nobody, type: "chat", id: "dm-nobody" }, xml("body", {}, "Hallo?")),
    );
    const error = await eventually(() =>
      heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === "dm-nobody"),
    );
    expect(error.attrs["from"]).toBe(nobody);
    expect(error.getChild("error")?.getChild("item-not-found", NS.stanzas)).toBeDefined();
    expect(inbound.some((e) => e.content?.body === "Hallo?")).toBe(false);
  });

  it("XMPP bridge - a private message through the room comes from outside the user domains and is refused", async () => {
    // The room relays it from room@conference/Weber: a JID of the group chat service, not of the users' domain.
    await officer.send(
      xml(
        "message",
        { to: `${room}/Claire Martin (Ministère de l'Intérieur)`, type: "chat", id: "pm-1" },
        xml("body", {}, "Privat über den Raum"),
        xml("x", { xmlns: NS.mucUser }),
      ),
    );
    const error = await eventually(() =>
      heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === "pm-1"),
    );
    expect(error.getChild("error")?.getChild("forbidden", NS.stanzas)).toBeDefined();
    expect(inbound.some((e) => e.content?.body === "Privat über den Raum")).toBe(false);
  });

  it("XMPP bridge - typing notifications to a puppet open nothing", async () => {
    const before = links.list().length;
    const other = puppetJid("matrix", "tchap", "@autre:tchap.localhost", {
      domain: prosody?.componentDomain ?? "",
    });
    await officer.send(
      xml("message", { to: other, type: "chat" }, xml("composing", { xmlns: NS.chatstates })),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(links.list().length).toBe(before);
    expect(heard.some((m) => m.attrs["type"] === "error" && m.attrs["from"] === other)).toBe(false);
  });

  it("XMPP bridge - two people whose ids differ only in case get a puppet each, and each puppet reaches its own", async () => {
    if (prosody === undefined) return;
    const capitalised = { userId: "@Claire.Martin:tchap.localhost", displayName: "C. Martin" };
    await scene.deliverFromClaire(bus, scene.roomTarget(room), {
      id: "claire-capitalised-1",
      type: "message.created",
      sender: capitalised,
      content: { body: "Une autre Claire" },
    });
    await eventually(() => heard.find((m) => m.getChildText("body") === "Une autre Claire"));
    const other = puppetJid("matrix", "tchap", capitalised.userId, { domain: prosody.componentDomain });
    expect(other).not.toBe(puppet);
    const write = (to: string, id: string, text: string): Promise<NormalisedEvent> =>
      officer
        .send(xml("message", { to, type: "chat", id }, xml("body", {}, text)))
        .then(() => eventually(() => inbound.find((e) => e.content?.body === text)));
    const toCapitalised = await write(other, "dm-case-1", "An die andere Claire");
    const toClaire = await write(puppet, "dm-case-2", "An Claire");
    expect(toCapitalised.source.conversation).toBe(
      scene.directWith(officerJid, { network: "matrix", instance: "tchap", userId: capitalised.userId })
        .conversation,
    );
    expect(toClaire.source.conversation).toBe(direct.conversation);
  });
});
