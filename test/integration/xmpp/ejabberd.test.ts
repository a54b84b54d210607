/**
 * The core of the XMPP bridge's suite against ejabberd, so that the bridge is shown not to depend on
 * Prosody's ways: live messages both ways, a direct chat, corrections both ways, and a server restart
 * mid-conversation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { startEjabberdOrSkip } from "../../helpers/ejabberd.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { NS } from "../../helpers/xmppNamespaces.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const ejabberd = nats === undefined ? undefined : await startEjabberdOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined || ejabberd === undefined)("XMPP bridge on ejabberd", () => {
  let bus: JetStreamBus;
  let bridge: RunningXmppBridge | undefined;
  let officer: XmppClient | undefined;
  let room = "";
  const heard: Element[] = [];
  const present = new Set<string>();
  const inbound: NormalisedEvent[] = [];
  const bodies = (): string[] => inbound.map((e) => e.content?.body ?? "");
  const body = (m: Element): string | null => m.getChildText("body");
  const claire = (): string => `${room}/Claire Martin (Ministère de l'Intérieur)`;

  const startBridge = async (): Promise<RunningXmppBridge> => {
    if (ejabberd === undefined) throw new Error("no ejabberd");
    bridge = await scene.startXmppBridge(bus, ejabberd, log, { agency: "bpol" });
    return bridge;
  };

  /** (Re)connects the officer and joins the room as "Weber", as a native client would. */
  async function joinAsOfficer(): Promise<XmppClient> {
    if (ejabberd === undefined) throw new Error("no ejabberd");
    await stopClient(officer);
    present.clear();
    officer = await scene.weberInRoom(ejabberd, room, { heard, present });
    return officer;
  }

  const say = async (text: string, id?: string, ...children: Element[]): Promise<void> => {
    await officer?.send(
      xml(
        "message",
        { to: room, type: "groupchat", ...(id === undefined ? {} : { id }) },
        xml("body", {}, text),
        ...children,
      ),
    );
  };

  const fromTchap = (event: scene.EventFromClaire): Promise<unknown> =>
    scene.deliverFromClaire(bus, scene.roomTarget(room), event);

  beforeAll(async () => {
    if (nats === undefined || ejabberd === undefined) return;
    room = `lage@${ejabberd.mucDomain}`;
    bus = await scene.linkedBus(nats.url, log, room);
    await scene.collectInbound(bus, inbound);
    await scene.addWeber(ejabberd);
    // The bridge's bot creates the room by joining it and never configures it: the officer must be able to
    // join and write at once.
    await startBridge();
  });

  afterAll(async () => {
    if (nats === undefined || ejabberd === undefined) return;
    await stopClient(officer);
    await bridge?.stop();
    await bus.close();
    await ejabberd.stop();
    await nats.stop();
  });

  it("XMPP bridge on ejabberd - an officer's group chat message reaches the bus as a valid event", async () => {
    await joinAsOfficer();
    await scene.bridgeInRoom(present, room, 20_000);
    await say("Lage ruhig", "m1");
    const event = await eventually(() => inbound.find((e) => e.content?.body === "Lage ruhig"));
    expect(event.type).toBe("message.created");
    expect(event.source).toMatchObject({ network: "xmpp", instance: "bpol", conversation: room });
    expect(event.source.messageId).toBeDefined();
    expect(event.sender.displayName).toBe("Weber");
    // The room stamps what it relays with its own stanza-id (XEP-0359), which the bridge keys events on.
    const echo = await eventually(() => heard.find((m) => body(m) === "Lage ruhig"));
    expect(echo.getChildren("stanza-id", NS.sid).some((s) => s.attrs["by"] === room)).toBe(true);
  });

  it("XMPP bridge on ejabberd - a delivery appears in the room from the sender's puppet, named with the agency", async () => {
    await fromTchap({
      id: "5d1e2f30-0001-4000-8000-000000000001",
      type: "message.created",
      content: { body: "Bien reçu" },
    });
    const message = await eventually(() => heard.find((m) => body(m) === "Bien reçu"));
    expect(message.attrs["from"]).toBe(claire());
    expect(message.attrs["type"]).toBe("groupchat");
    // The puppet's own message, reflected by the room, is not bridged back.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.filter((e) => e.content?.body === "Bien reçu")).toHaveLength(0);
  });

  it("XMPP bridge on ejabberd - a direct chat with a puppet, both ways", async () => {
    if (ejabberd === undefined || officer === undefined) return;
    const puppet = scene.clairePuppet(ejabberd.componentDomain);
    const officerJid = `weber@${ejabberd.domain}`;
    // Available, as any client is: a message to the bare JID reaches only available sessions.
    await officer.send(xml("presence"));
    await officer.send(
      xml("message", { to: puppet, type: "chat", id: "dm-1" }, xml("body", {}, "Unter vier Augen")),
    );
    const event = await eventually(() => inbound.find((e) => e.content?.body === "Unter vier Augen"));
    const direct = scene.directWithClaire(officerJid);
    expect(event.source.conversation).toBe(direct.conversation);
    expect(event.sender.userId).toBe(officerJid);

    await scene.deliverFromClaire(
      bus,
      direct,
      {
        id: "5d1e2f30-0002-4000-8000-000000000001",
        type: "message.created",
        content: { body: "Je vous écoute" },
      },
      { conversation: scene.claireSideOfDirect(officerJid) },
    );
    const reply = await eventually(() => heard.find((m) => body(m) === "Je vous écoute"));
    expect(reply.attrs["type"]).toBe("chat");
    expect(reply.attrs["from"]).toBe(`${puppet}/fedgate`);
  });

  it("XMPP bridge on ejabberd - a correction (XEP-0308) is an edit of the right message, both ways", async () => {
    await say("Treffpunkt Nordtor", "w-1");
    const original = await eventually(() => inbound.find((e) => e.content?.body === "Treffpunkt Nordtor"));
    await say("Treffpunkt Südtor", "w-2", xml("replace", { xmlns: NS.correction, id: "w-1" }));
    const edit = await eventually(() => inbound.find((e) => e.content?.body === "Treffpunkt Südtor"));
    expect(edit.type).toBe("message.edited");
    expect(edit.relations?.replaces).toBe(original.id);

    await fromTchap({
      id: "5d1e2f30-0001-4000-8000-000000000002",
      type: "message.created",
      content: { body: "Nous arrivons" },
    });
    const created = await eventually(() => heard.find((m) => body(m) === "Nous arrivons"));
    const createdId = created.getChild("origin-id", NS.sid)?.attrs["id"] ?? created.attrs["id"];
    expect(createdId).toBeDefined();
    await fromTchap({
      id: "5d1e2f30-0001-4000-8000-000000000003",
      type: "message.edited",
      content: { body: "Nous arrivons à 15 h" },
      relations: { replaces: "5d1e2f30-0001-4000-8000-000000000002" },
    });
    const correction = await eventually(() => heard.find((m) => body(m) === "Nous arrivons à 15 h"));
    expect(correction.attrs["from"]).toBe(claire());
    expect(correction.getChild("replace", NS.correction)?.attrs["id"]).toBe(createdId);
  });

  it("XMPP bridge on ejabberd - restarted mid-conversation: every message reaches the bus once, nothing lost", async () => {
    if (ejabberd === undefined) return;
    const officerSays = async (text: string): Promise<void> => {
      await say(text);
      // The room's echo: the room has certainly taken (and archived) the message.
      await eventually(() => heard.find((m) => body(m) === text), 10_000, `the room to have "${text}"`);
    };
    await officerSays("vor dem Neustart");
    await eventually(() => (bodies().includes("vor dem Neustart") ? true : undefined));

    // The bridge is down while ejabberd restarts and the officer goes on: the room's archive must be the
    // bridge's catch-up, across the restart.
    await bridge?.stop();
    bridge = undefined;
    await ejabberd.restart();
    await joinAsOfficer();
    await officerSays("während der Wartung 1");
    await officerSays("während der Wartung 2");
    await startBridge();
    await scene.bridgeInRoom(present, room, 20_000);
    await eventually(
      () => (bodies().includes("während der Wartung 2") ? true : undefined),
      15_000,
      "the missed messages",
    );

    // ejabberd restarts under the running bridge, which reconnects by itself. The officer may be back before
    // it: what they write then arrives live or from the archive, once either way.
    await ejabberd.restart();
    await joinAsOfficer();
    await officerSays("nach dem Neustart");
    await scene.bridgeInRoom(present, room, 20_000);
    await officerSays("danach");
    await eventually(() => (bodies().includes("danach") ? true : undefined), 15_000, "the last message");
    await new Promise((resolve) => setTimeout(resolve, 500));
    const expected = [
      "vor dem Neustart",
      "während der Wartung 1",
      "während der Wartung 2",
      "nach dem Neustart",
      "danach",
    ];
    for (const text of expected)
      expect(
        bodies().filter((b) => b === text),
        text,
      ).toHaveLength(1);
    expect(bodies().filter((b) => expected.includes(b))).toEqual(expected);
  });
});
