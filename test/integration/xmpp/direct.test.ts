import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Delivery, Endpoint, NormalisedEvent } from "../../../schemas/types.js";
import { puppetJid, XmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import { JetStreamBus } from "../../../gateway/bus/JetStreamBus.js";
import { buckets } from "../../../gateway/bus/topology.js";
import { directConversation } from "../../../gateway/contract/directConversations.js";
import { validateEvent } from "../../../gateway/contract/schemas.js";
import { subjects } from "../../../gateway/contract/subjects.js";
import { createLogger } from "../../../gateway/log.js";
import { encodeJson } from "../../../gateway/stores/KeyValueStore.js";
import { LinkStore } from "../../../gateway/stores/LinkStore.js";
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

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

const NS = {
  muc: "http://jabber.org/protocol/muc",
  correction: "urn:xmpp:message-correct:0",
  reactions: "urn:xmpp:reactions:0",
  nick: "http://jabber.org/protocol/nick",
  vcard: "vcard-temp",
  stanzas: "urn:ietf:params:xml:ns:xmpp-stanzas",
};

const claire = { network: "matrix", instance: "tchap", userId: "@claire.martin:tchap.localhost" };
const dinum = { id: "dinum-mi", name: "Ministère de l'Intérieur", country: "FR" };

describe.skipIf(nats === undefined || prosody === undefined)("XMPP bridge - direct chats", () => {
  let bus: JetStreamBus;
  let bridge: XmppBridge;
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
  const fromClaire = async (
    target: Endpoint,
    event: Partial<NormalisedEvent> & Pick<NormalisedEvent, "type">,
  ): Promise<NormalisedEvent> => {
    const full: NormalisedEvent = {
      specVersion: "1",
      id: `claire-direct-${++n}`,
      source: {
        network: "matrix",
        instance: "tchap",
        conversation: directConversation(claire.userId, {
          network: "xmpp",
          instance: "bpol",
          userId: officerJid,
        }),
      },
      sender: { userId: claire.userId, displayName: "Claire Martin" },
      timestamp: new Date().toISOString(),
      ...event,
    };
    const delivery: Delivery = {
      specVersion: "1",
      id: `${full.id}.x`,
      event: full,
      target,
      senderAgency: dinum,
    };
    await bus.publish(subjects.outbound("xmpp", "bpol"), encodeJson(delivery), { msgId: delivery.id });
    return full;
  };

  beforeAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    room = `lage@${prosody.mucDomain}`;
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await bus.ensureTopology();
    await linkRoom(bus, "lage", room);
    links = new LinkStore(await bus.keyValue(buckets.links));
    await links.start();
    await bus.follow("FEDGATE_INBOUND", subjects.inboundAll, "start", (m) =>
      inbound.push(validateEvent(JSON.parse(Buffer.from(m.data).toString()))),
    );
    bridge = await XmppBridge.start(
      bus,
      { ...prosody.bridgeConfig(), agency: "bpol" },
      prosody.componentSecret,
      log,
    );
    officerJid = await prosody.addUser("weber", "pw-weber");
    puppet = puppetJid(claire.network, claire.instance, claire.userId, { domain: prosody.componentDomain });
    direct = {
      network: "xmpp",
      instance: "bpol",
      conversation: directConversation(officerJid, claire),
      agency: "bpol",
      kind: "direct",
    };
    officer = xmppClient(prosody, "weber", "pw-weber");
    officer.on("stanza", (stanza) => {
      if (stanza.is("message")) heard.push(stanza);
      if (stanza.is("presence")) present.add(String(stanza.attrs["from"]));
    });
    await officer.start();
    // Available, as any client is: a message to the bare JID reaches only available sessions.
    await officer.send(xml("presence"));
    await officer.send(xml("presence", { to: `${room}/Weber` }, xml("x", { xmlns: NS.muc })));
    await eventually(
      () => (present.has(`${room}/fedgate`) ? true : undefined),
      10_000,
      "the bridge in the room",
    );
    // Claire speaks in the shared room first: that is how the officer meets her puppet.
    await fromClaire(
      { network: "xmpp", instance: "bpol", conversation: room, agency: "bpol", kind: "room" },
      { type: "message.created", content: { body: "Bonjour à tous" } },
    );
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
        conversation: directConversation(claire.userId, {
          network: "xmpp",
          instance: "bpol",
          userId: officerJid,
        }),
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
        xml("x", { xmlns: "http://jabber.org/protocol/muc#user" }),
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
      xml(
        "message",
        { to: other, type: "chat" },
        xml("composing", { xmlns: "http://jabber.org/protocol/chatstates" }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(links.list().length).toBe(before);
    expect(heard.some((m) => m.attrs["type"] === "error" && m.attrs["from"] === other)).toBe(false);
  });
});
