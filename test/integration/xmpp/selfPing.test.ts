/**
 * A room that loses the bridge's bot while the stream stays up (kicked by a moderator here; a MUC service that
 * restarted and forgot its occupants does the same, without a word): the bridge finds out by its MUC self-ping
 * (XEP-0410), joins again, and bridges from the room's archive what was written while it was out, once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { bodiesStartingWith, eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined || prosody === undefined)("XMPP bridge - MUC self-ping", () => {
  let bus: JetStreamBus;
  let bridge: RunningXmppBridge | undefined;
  let officer: XmppClient & { errors: Error[] };
  let room = "";
  const present = new Set<string>();
  const heard: Element[] = [];
  const inbound: NormalisedEvent[] = [];

  beforeAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    room = `wache@${prosody.mucDomain}`;
    bus = await scene.linkedBus(nats.url, log, room);
    await scene.collectInbound(bus, inbound);
    await scene.addWeber(prosody);
    // Weber opens the room, and so owns it: he may kick.
    officer = await scene.weberInRoom(prosody, room, { heard, present });
    bridge = await scene.startXmppBridge(bus, prosody, log, {
      agency: "bpol",
      connectionCheck: { intervalMs: 1000, timeoutMs: 1000 },
    });
    await scene.bridgeInRoom(present, room);
  });

  afterAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    await stopClient(officer);
    await bridge?.stop();
    await bus.close();
    await prosody.stop();
    await nats.stop();
  });

  it("self-ping - the bot kicked from a linked room: it joins again within seconds, and what was said meanwhile is bridged once, in order", async () => {
    const say = (body: string): Promise<void> =>
      officer.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, body)));
    await say("wache 1");
    await eventually(() => (bodiesStartingWith(inbound, "wache").length === 1 ? true : undefined));

    await officer.iqCaller.request(
      xml(
        "iq",
        { type: "set", to: room },
        xml(
          "query",
          { xmlns: "http://jabber.org/protocol/muc#admin" },
          xml("item", { nick: "fedgate", role: "none" }),
        ),
      ),
    );
    await eventually(() => (present.has(`${room}/fedgate`) ? undefined : true), 5000, "the bot out");
    const kickedAt = Date.now();
    await say("wache 2");
    await say("wache 3");
    await scene.bridgeInRoom(present, room, 10_000, "the bot back in the room");
    const backMs = Date.now() - kickedAt;
    await say("wache 4");
    await eventually(
      () => (bodiesStartingWith(inbound, "wache").length >= 4 ? true : undefined),
      20_000,
      "all on the bus",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(bodiesStartingWith(inbound, "wache")).toEqual(["wache 1", "wache 2", "wache 3", "wache 4"]);
    console.error(`XMPP bridge kicked from its room: back in ${String(backMs)} ms`);
  }, 60_000);
});
