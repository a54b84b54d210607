import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import * as scene from "../../helpers/xmppScenes.js";
import { originIdFor } from "../../../bridges/xmpp/deliveryIds.js";
import { startTelemetry, stopTelemetry } from "../../../gateway/platform/telemetry.js";
import { sample, scrapeThisProcess } from "../../helpers/metricsText.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined || prosody === undefined)(
  "XMPP bridge - nothing lost while down (MAM)",
  () => {
    let bus: JetStreamBus;
    let officer: XmppClient;
    let room = "";
    const present = new Set<string>();
    const heard: Element[] = [];
    /** Whether the room has echoed `body` back to the officer: then the room has certainly received it. */
    const echoed = (body: string): true | undefined =>
      heard.some((m) => m.getChildText("body") === body) ? true : undefined;
    const inbound: NormalisedEvent[] = [];
    const bodies = (): string[] => inbound.map((e) => e.content?.body ?? "");

    async function joinAsOfficer(): Promise<void> {
      if (prosody === undefined) return;
      await stopClient(officer);
      present.clear();
      officer = await scene.weberInRoom(prosody, room, { heard, present });
    }

    const say = (text: string): Promise<void> =>
      officer.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, text)));

    beforeAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      startTelemetry({ serviceName: "fedgate-bridge-xmpp" });
      room = `lage@${prosody.mucDomain}`;
      bus = await scene.linkedBus(nats.url, log, room);
      await scene.collectInbound(bus, inbound);
      await scene.addWeber(prosody);
    });

    afterAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      await stopClient(officer);
      await bus.close();
      await prosody.stop();
      await nats.stop();
      await stopTelemetry();
    });

    it("catch-up - what the room got while the bridge was stopped is bridged once, in order, after it restarts", async () => {
      if (prosody === undefined) return;
      let bridge = await scene.startXmppBridge(bus, prosody, log);
      await joinAsOfficer();
      await scene.bridgeInRoom(present, room);
      await say("eins");
      await eventually(() => (bodies().includes("eins") ? true : undefined));

      await bridge.stop();
      await eventually(() => (present.has(`${room}/fedgate`) ? undefined : true), 10_000, "the bridge gone");
      await say("zwei");
      await say("drei");
      await eventually(() => echoed("drei"), 10_000, "the room to have the messages");

      const before = await scrapeThisProcess();
      bridge = await scene.startXmppBridge(bus, prosody, log);
      await eventually(() => (bodies().includes("drei") ? true : undefined), 15_000, "the missed messages");
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(bodies().filter((b) => ["eins", "zwei", "drei"].includes(b))).toEqual(["eins", "zwei", "drei"]);
      // The restart's catch-up ran and read back what the room got meanwhile.
      const after = await scrapeThisProcess();
      const runs = (text: string): number =>
        sample(text, "fedgate_catchup_runs_total", { network: "xmpp", outcome: "done" });
      const read = (text: string): number =>
        sample(text, "fedgate_catchup_messages_total", { network: "xmpp" });
      expect(runs(after) - runs(before)).toBeGreaterThanOrEqual(1);
      expect(read(after) - read(before)).toBeGreaterThanOrEqual(2);
      await bridge.stop();
    });

    it("catch-up - what the bridge posted just before it was killed (not yet recorded) is not taken for a native message after it restarts", async () => {
      if (prosody === undefined) return;
      let bridge = await scene.startXmppBridge(bus, prosody, log);
      await joinAsOfficer();
      await scene.bridgeInRoom(present, room);
      await bridge.stop();
      await eventually(() => (present.has(`${room}/fedgate`) ? undefined : true), 10_000, "the bridge gone");
      // What a puppet's post looks like in the archive: the origin-id the bridge derives from the delivery.
      // The puppets are not in the room yet when the restarted bridge reads it, so only the id tells.
      const posted = originIdFor(`delivery-${String(Date.now())}`, 0);
      await officer.send(
        xml(
          "message",
          { to: room, type: "groupchat", id: posted },
          xml("body", {}, "vom Gateway gepostet"),
          xml("origin-id", { xmlns: "urn:xmpp:sid:0", id: posted }),
        ),
      );
      await say("danach geschrieben");
      await eventually(() => echoed("danach geschrieben"), 10_000, "the room to have the messages");

      bridge = await scene.startXmppBridge(bus, prosody, log);
      await eventually(
        () => (bodies().includes("danach geschrieben") ? true : undefined),
        15_000,
        "the missed message",
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(bodies()).not.toContain("vom Gateway gepostet");
      await bridge.stop();
    });

    it("catch-up - Prosody restarted mid-conversation: nothing lost, nothing doubled", async () => {
      if (prosody === undefined) return;
      const bridge = await scene.startXmppBridge(bus, prosody, log);
      await joinAsOfficer();
      await scene.bridgeInRoom(present, room);
      await say("vor dem Neustart");
      await eventually(() => (bodies().includes("vor dem Neustart") ? true : undefined));

      await prosody.restart();
      // The officer is back before the bridge: what they write now must still arrive.
      await joinAsOfficer();
      await say("nach dem Neustart");
      await eventually(
        () => (bodies().includes("nach dem Neustart") ? true : undefined),
        20_000,
        "the message after the restart",
      );
      await scene.bridgeInRoom(present, room, 20_000, "the bridge back in the room");
      await say("danach");
      await eventually(() => (bodies().includes("danach") ? true : undefined), 10_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const body of ["eins", "zwei", "drei", "vor dem Neustart", "nach dem Neustart", "danach"]) {
        expect(
          bodies().filter((b) => b === body),
          body,
        ).toHaveLength(1);
      }
      await bridge.stop();
    });
  },
);
