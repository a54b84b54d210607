import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import { XmppBridge, type RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually, matrixRoom } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { NS } from "../../helpers/xmppNamespaces.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const logLines: string[] = [];
const log = createLogger(
  "info",
  "xmpp-test",
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

describe.skipIf(nats === undefined || prosody === undefined)("XMPP bridge - against a real Prosody", () => {
  let bus: JetStreamBus;
  let bridge: RunningXmppBridge;
  let officer: XmppClient;
  const heard: Element[] = [];
  const present = new Set<string>();
  const inbound: NormalisedEvent[] = [];
  let room = "";

  beforeAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    room = `lage@${prosody.mucDomain}`;
    bus = await scene.linkedBus(nats.url, log, room);
    await scene.collectInbound(bus, inbound);

    await scene.addWeber(prosody);
    await prosody.addUser("outsider", "pw-outsider");
    officer = await scene.weberInRoom(prosody, room, { heard, present });

    bridge = await scene.startXmppBridge(bus, prosody, log);
  });

  afterAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    await bridge.stop();
    await stopClient(officer);
    await bus.close();
    await prosody.stop();
    await nats.stop();
  });

  it("XMPP bridge - an officer's group chat message reaches the bus as a valid event", async () => {
    // The bridge's bot joins the linked room on its own.
    await scene.bridgeInRoom(present, room);
    await officer.send(
      xml("message", { to: room, type: "groupchat", id: "m1" }, xml("body", {}, "Lage ruhig")),
    );
    const event = await eventually(() => inbound.find((e) => e.content?.body === "Lage ruhig"));
    expect(event.source).toMatchObject({ network: "xmpp", instance: "bpol", conversation: room });
    expect(event.source.messageId).toBeDefined();
    expect(event.sender.displayName).toBe("Weber");
    expect(event.type).toBe("message.created");
  });

  it("XMPP bridge - a delivery appears in the room from the sender's puppet, named with the agency", async () => {
    await scene.deliverFromClaire(bus, scene.roomTarget(room), {
      id: "3f0e9a52-0d8b-4a4e-9a53-0c6d2f1e8a11",
      type: "message.created",
      source: {
        network: "matrix",
        instance: "tchap",
        conversation: matrixRoom.conversation,
        messageId: "$abc",
      },
      content: { body: "Bien reçu" },
    });
    const message = await eventually(() => heard.find((m) => m.getChildText("body") === "Bien reçu"));
    expect(message.attrs["from"]).toBe(`${room}/Claire Martin (Ministère de l'Intérieur)`);
    expect(message.attrs["type"]).toBe("groupchat");
    // The puppet's own message, reflected by the room, is not bridged back.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.filter((e) => e.content?.body === "Bien reçu")).toHaveLength(0);
  });

  it("XMPP bridge - a nick change is a leave and a join of the same person, known by the room's occupant-id", async () => {
    await officer.send(xml("presence", { to: `${room}/Weber (Einsatzleitung)` }));
    const joined = await eventually(() =>
      inbound.find((e) => e.type === "member.joined" && e.sender.displayName === "Weber (Einsatzleitung)"),
    );
    const left = await eventually(() =>
      inbound.find((e) => e.type === "member.left" && e.sender.displayName === "Weber"),
    );
    // The room hides real JIDs from the bot here, so XEP-0421 is what keeps the person the same.
    expect(joined.sender.userId).toBe(left.sender.userId);
    expect(joined.sender.userId.startsWith(`${room}#`)).toBe(true);
    await officer.send(xml("presence", { to: `${room}/Weber` }));
    await eventually(() =>
      inbound.find((e) => e.type === "member.joined" && e.sender.displayName === "Weber"),
    );
  });

  describe("bad input", () => {
    async function stillBridging(): Promise<void> {
      const probe = `still there ${Math.random()}`;
      await officer.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, probe)));
      await eventually(
        () => inbound.find((e) => e.content?.body === probe),
        10_000,
        "bridging after bad input",
      );
    }

    it("bad input - an oversized body is refused with FG_NATIVE_INVALID and a log line, nothing is published", async () => {
      const huge = "x".repeat(70_000);
      await officer.send(
        xml("message", { to: room, type: "groupchat", id: "huge-1" }, xml("body", {}, huge)),
      );
      await eventually(() =>
        logLines.find((l) => l.includes("FG_NATIVE_INVALID") && l.includes("70000 bytes")),
      );
      // The sender's client shows why.
      const error = await eventually(() =>
        heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === "huge-1"),
      );
      expect(error.getChild("error")?.getChildText("text", NS.stanzas)).toContain("70000 bytes");
      await stillBridging();
      expect(inbound.some((e) => e.content?.body === huge)).toBe(false);
    });

    it("bad input - a message without a body (a chat state) publishes nothing and breaks nothing", async () => {
      await officer.send(
        xml("message", { to: room, type: "groupchat" }, xml("composing", { xmlns: NS.chatstates })),
      );
      const before = inbound.length;
      await stillBridging();
      expect(inbound.length).toBe(before + 1);
    });
  });

  it("XMPP bridge - a wrong component secret is refused at start with FG_PEER_REFUSED saying why", async () => {
    if (prosody === undefined) return;
    const attempt = XmppBridge.start(
      bus,
      { ...prosody.bridgeConfig(), secret: { value: "wrong" } },
      "wrong",
      log,
    );
    await expect(attempt).rejects.toMatchObject({ code: "FG_PEER_REFUSED" });
    await expect(attempt).rejects.toThrow(/refused the component secret/);
  });
});
