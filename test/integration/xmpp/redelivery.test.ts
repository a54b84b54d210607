/**
 * Nothing doubled in a room: a delivery JetStream hands out again (its ack lost as the bus went away, the
 * bridge restarted meanwhile) is found in the room's archive and not posted a second time.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Delivery, NormalisedEvent } from "../../../schemas/types.js";
import { originIdFor } from "../../../bridges/xmpp/deliveryIds.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { decodeJson, encodeJson, keyToken } from "../../../gateway/platform/bus/KeyValueStore.js";
import { eventually, matrixRoom } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { TcpRelay } from "../../helpers/tcpRelay.js";
import * as scene from "../../helpers/xmppScenes.js";

const NS_MAM = "urn:xmpp:mam:2";
const NS_RSM = "http://jabber.org/protocol/rsm";
const NS_FORWARD = "urn:xmpp:forward:0";
const NS_SID = "urn:xmpp:sid:0";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const logLines: string[] = [];
const log = createLogger("info", "test", {
  write: (line: string) => {
    logLines.push(line);
  },
});

describe.skipIf(nats === undefined || prosody === undefined)("XMPP bridge - a delivery handled again", () => {
  let bus: JetStreamBus;
  let bridge: RunningXmppBridge | undefined;
  let officer: XmppClient & { errors: Error[] };
  let room = "";
  const heard: Element[] = [];
  const present = new Set<string>();
  const inbound: NormalisedEvent[] = [];

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
  });

  afterAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    try {
      await bridge?.stop();
      await stopClient(officer);
      await bus.close();
    } finally {
      await prosody.stop();
      await nats.stop();
    }
  });

  /** What the core delivers into the room of a message Claire wrote on Tchap. */
  function fromClaire(body: string): Delivery {
    const event: NormalisedEvent = {
      specVersion: "1",
      id: randomUUID(),
      type: "message.created",
      source: { network: "matrix", instance: "tchap", conversation: matrixRoom.conversation },
      sender: scene.claireAsSender,
      timestamp: new Date().toISOString(),
      content: { body },
    };
    return {
      specVersion: "1",
      id: `${event.id}.x`,
      event,
      target: scene.roomTarget(room),
      senderAgency: scene.claireAgency,
    };
  }

  /**
   * Puts a delivery on the bus for the bridge. The same delivery handed over again under another message id
   * is what the bus holds after an ack that never reached it: the first id is still in the duplicate window.
   */
  async function handOver(delivery: Delivery, msgId: string): Promise<void> {
    await bus.publish(subjects.outbound("xmpp", "bpol"), encodeJson(delivery), { msgId });
  }

  /** The room's latest messages as its archive gives them to officer Weber, oldest first: who said what. */
  async function roomHistory(): Promise<{ nick: string; body: string }[]> {
    const queryid = randomUUID();
    const results: Element[] = [];
    const collect = (stanza: Element): void => {
      const result = stanza.getChild("result", NS_MAM);
      if (stanza.is("message") && result?.attrs["queryid"] === queryid) results.push(result);
    };
    officer.on("stanza", collect);
    try {
      await officer.iqCaller.request(
        xml(
          "iq",
          { type: "set", to: room },
          xml(
            "query",
            { xmlns: NS_MAM, queryid },
            xml("set", { xmlns: NS_RSM }, xml("max", {}, "50"), xml("before")),
          ),
        ),
      );
    } finally {
      officer.removeListener("stanza", collect);
    }
    return results.flatMap((result) => {
      const message = result.getChild("forwarded", NS_FORWARD)?.getChild("message");
      const body = message?.getChildText("body");
      const from = message?.attrs["from"] ?? "";
      return body === null || body === undefined ? [] : [{ nick: from.slice(from.indexOf("/") + 1), body }];
    });
  }

  /** The bridge's word, logged at info, that it looked for what `delivery` posted before, with what it found. */
  function lookedAgain(delivery: Delivery): { found: number }[] {
    return logLines
      .map((line) => JSON.parse(line) as { msg?: string; deliveryId?: string; found?: number })
      .filter(
        (line) =>
          line.deliveryId === delivery.id &&
          line.msg === "delivery handled again; looked in the room's archive for what it posted before",
      )
      .map((line) => ({ found: line.found ?? -1 }));
  }

  async function inRoom(prefix: string): Promise<string[]> {
    return (await roomHistory()).filter((m) => m.body.startsWith(prefix)).map((m) => m.body);
  }

  /** Forgets the message map's records of an event, as when the bus went away before they were stored. */
  async function forgetRecords(eventId: string): Promise<void> {
    const messages = await bus.keyValue(buckets.messages);
    for (const key of await messages.keys()) {
      const entry = await messages.get(key);
      if (key.startsWith(`e.${eventId}.`) || (entry !== undefined && decodeJson(entry.value) === eventId))
        await messages.delete(key);
    }
  }

  it("XMPP bridge - a delivery posted, its ack and record lost, handled again after the bridge restarted: posted once", async () => {
    if (prosody === undefined) return;
    const first = fromClaire("einmal 1");
    await handOver(first, first.id);
    await eventually(async () => ((await inRoom("einmal")).length === 1 ? true : undefined), 20_000);

    // The bridge dies before the bus stored its record and ack: the stream hands the delivery out again.
    await bridge?.stop();
    bridge = undefined;
    await eventually(() => (present.has(`${room}/fedgate`) ? undefined : true), 10_000, "the bot gone");
    await forgetRecords(first.event.id);
    await handOver(first, `${first.id}.again`);
    const second = fromClaire("einmal 2");
    await handOver(second, second.id);
    bridge = await scene.startXmppBridge(bus, prosody, log);

    // Deliveries go out in order: once the second is in the room, the first was handled again before it.
    await eventually(
      async () => ((await inRoom("einmal 2")).length === 1 ? true : undefined),
      30_000,
      "the delivery after the one handled again",
    );
    expect(await inRoom("einmal")).toEqual(["einmal 1", "einmal 2"]);
    // Found in the archive, not posted again: not kept from the room some other way.
    expect(lookedAgain(first)).toEqual([{ found: 1 }]);
    expect(lookedAgain(second)).toEqual([]);
  });

  it("XMPP bridge - a delivery handled again posts what only someone else's message in the archive claims to be", async () => {
    if (prosody === undefined) return;
    const delivery = fromClaire("echt 1");
    // An attempt at the delivery began and ended before it sent anything; meanwhile an officer wrote a
    // message under the id the delivery's message would have had.
    const state = await bus.keyValue("fedgate_xmpp_state");
    await state.put(`underway.${keyToken(room)}`, encodeJson(delivery.id));
    await officer.send(
      xml(
        "message",
        { to: room, type: "groupchat", id: originIdFor(delivery.id, 0) },
        xml("body", {}, "unecht 1"),
        xml("origin-id", { xmlns: NS_SID, id: originIdFor(delivery.id, 0) }),
      ),
    );
    await eventually(async () => ((await inRoom("unecht 1")).length === 1 ? true : undefined), 10_000);

    await handOver(delivery, delivery.id);
    await eventually(async () => ((await inRoom("echt 1")).length === 1 ? true : undefined), 20_000);
    const history = await roomHistory();
    expect(history.filter((m) => m.body.endsWith("echt 1")).map((m) => m.body)).toEqual([
      "unecht 1",
      "echt 1",
    ]);
    expect(history.find((m) => m.body === "echt 1")?.nick).not.toBe(
      history.find((m) => m.body === "unecht 1")?.nick,
    );
    expect(lookedAgain(delivery)).toEqual([{ found: 0 }]);
  });

  it("XMPP bridge - a message written to a server going down, which never reads it, is posted again once the server is back", async () => {
    if (prosody === undefined) return;
    // The bridge reaches Prosody through a relay that can take what it writes and drop it.
    await bridge?.stop();
    const relay = await TcpRelay.start(Number(new URL(prosody.componentUrl).port));
    try {
      bridge = await scene.startXmppBridge(bus, prosody, log, {
        service: relay.through(prosody.componentUrl),
      });
      const before = fromClaire("verschluckt 0");
      await handOver(before, before.id);
      await eventually(async () => ((await inRoom("verschluckt 0")).length === 1 ? true : undefined), 20_000);
      // Claire's puppet is in the room: the next message is one stanza, written and never read.
      relay.swallowing = true;
      const swallowed = fromClaire("verschluckt 1");
      await handOver(swallowed, swallowed.id);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await relay.down();
      relay.swallowing = false;
      await new Promise((resolve) => setTimeout(resolve, 500));
      await relay.up();
      const after = fromClaire("verschluckt 2");
      await handOver(after, after.id);
      await eventually(
        async () => ((await inRoom("verschluckt 2")).length === 1 ? true : undefined),
        30_000,
        "the message after the swallowed one",
      );
      expect(await inRoom("verschluckt")).toEqual(["verschluckt 0", "verschluckt 1", "verschluckt 2"]);
    } finally {
      await bridge?.stop();
      bridge = undefined;
      await relay.stop();
    }
  });
});
