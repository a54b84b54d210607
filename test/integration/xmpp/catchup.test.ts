import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { XmppBridgeConfig } from "../../../bridges/xmpp/config.types.js";
import { XmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import { JetStreamBus } from "../../../gateway/bus/JetStreamBus.js";
import { validateEvent } from "../../../gateway/contract/schemas.js";
import { subjects } from "../../../gateway/contract/subjects.js";
import { createLogger } from "../../../gateway/log.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import {
  startProsodyOrSkip,
  stopClient,
  xml,
  xmppClient,
  type XmppClient,
  linkRoom,
} from "../../helpers/prosody.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined || prosody === undefined)(
  "XMPP bridge - nothing lost while down (MAM)",
  () => {
    let bus: JetStreamBus;
    let config: XmppBridgeConfig;
    let officer: XmppClient;
    let room = "";
    const present = new Set<string>();
    /** Bodies the room has echoed back to the officer: what the room has certainly received. */
    const echoed: string[] = [];
    const inbound: NormalisedEvent[] = [];
    const bodies = (): string[] => inbound.map((e) => e.content?.body ?? "");

    async function joinAsOfficer(): Promise<void> {
      if (prosody === undefined) return;
      await stopClient(officer);
      present.clear();
      officer = xmppClient(prosody, "weber", "pw-weber");
      officer.on("stanza", (stanza) => {
        if (stanza.is("presence") && stanza.attrs["type"] !== "unavailable")
          present.add(String(stanza.attrs["from"]));
        if (stanza.is("presence") && stanza.attrs["type"] === "unavailable")
          present.delete(String(stanza.attrs["from"]));
        if (stanza.is("message")) echoed.push(stanza.getChildText("body") ?? "");
      });
      await officer.start();
      await officer.send(
        xml("presence", { to: `${room}/Weber` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })),
      );
      await eventually(
        () => (present.has(`${room}/Weber`) ? true : undefined),
        10_000,
        "the officer in the room",
      );
    }

    const say = (text: string): Promise<void> =>
      officer.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, text)));

    beforeAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      room = `lage@${prosody.mucDomain}`;
      bus = await JetStreamBus.connect({ servers: nats.url, log });
      await bus.ensureTopology();
      await linkRoom(bus, "lage", room);
      await bus.follow("FEDGATE_INBOUND", subjects.inboundAll, "start", (m) =>
        inbound.push(validateEvent(JSON.parse(Buffer.from(m.data).toString()))),
      );
      config = prosody.bridgeConfig();
      await prosody.addUser("weber", "pw-weber");
    });

    afterAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      await stopClient(officer);
      await bus.close();
      await prosody.stop();
      await nats.stop();
    });

    it("catch-up - what the room got while the bridge was stopped is bridged once, in order, after it restarts", async () => {
      if (prosody === undefined) return;
      let bridge = await XmppBridge.start(bus, config, prosody.componentSecret, log);
      await joinAsOfficer();
      await eventually(
        () => (present.has(`${room}/fedgate`) ? true : undefined),
        10_000,
        "the bridge in the room",
      );
      await say("eins");
      await eventually(() => (bodies().includes("eins") ? true : undefined));

      await bridge.stop();
      await eventually(() => (present.has(`${room}/fedgate`) ? undefined : true), 10_000, "the bridge gone");
      await say("zwei");
      await say("drei");
      await eventually(
        () => (echoed.includes("drei") ? true : undefined),
        10_000,
        "the room to have the messages",
      );

      bridge = await XmppBridge.start(bus, config, prosody.componentSecret, log);
      await eventually(() => (bodies().includes("drei") ? true : undefined), 15_000, "the missed messages");
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(bodies().filter((b) => ["eins", "zwei", "drei"].includes(b))).toEqual(["eins", "zwei", "drei"]);
      await bridge.stop();
    });

    it("catch-up - Prosody restarted mid-conversation: nothing lost, nothing doubled", async () => {
      if (prosody === undefined) return;
      const bridge = await XmppBridge.start(bus, config, prosody.componentSecret, log);
      await joinAsOfficer();
      await eventually(
        () => (present.has(`${room}/fedgate`) ? true : undefined),
        10_000,
        "the bridge in the room",
      );
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
      await eventually(
        () => (present.has(`${room}/fedgate`) ? true : undefined),
        20_000,
        "the bridge back in the room",
      );
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
