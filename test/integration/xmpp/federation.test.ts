import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Delivery } from "../../../schemas/types.js";
import { AdapterRuntime } from "../../../bridges/kit/AdapterRuntime.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { loadConfig } from "../../../gateway/platform/config/loadConfig.js";
import { GatewayService } from "../../../gateway/core/GatewayService.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually, matrixRoom, message, writeGatewayConfig } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { NS } from "../../helpers/xmppNamespaces.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined || prosody === undefined)(
  "federation - XMPP through the core, with policy",
  () => {
    let gateway: GatewayService;
    let bus: JetStreamBus;
    let bridge: RunningXmppBridge;
    let tchap: AdapterRuntime;
    let officer: XmppClient;
    const atTchap: Delivery[] = [];
    const heard: Element[] = [];
    const present = new Set<string>();
    let room = "";

    beforeAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      room = `lage@${prosody.mucDomain}`;
      const config = await writeGatewayConfig(nats.url, {
        links: [
          {
            id: "lage",
            endpoints: [
              { network: "xmpp", instance: "bpol", conversation: room, agency: "bpol" },
              matrixRoom,
            ],
          },
        ],
      });
      gateway = await GatewayService.start(await loadConfig(config, {}), log);
      bus = await JetStreamBus.connect({ servers: nats.url, log });
      // A stand-in for the Matrix bridge: it records what reaches Tchap.
      tchap = await AdapterRuntime.open(bus, { network: "matrix", instance: "tchap", log });
      let n = 0;
      await tchap.consumeDeliveries((delivery) => {
        atTchap.push(delivery);
        return Promise.resolve(`$event${++n}`);
      });
      bridge = await scene.startXmppBridge(bus, prosody, log, {
        labels: [
          { marking: "DE-VS-NFD", displayMarking: "VS-NfD" },
          // A marking the bridge may carry but no agreement in the policy covers.
          { marking: "DE-VS-VERTRAULICH", displayMarking: "VS-VERTRAULICH" },
        ],
      });
      await scene.addWeber(prosody);
      officer = await scene.weberInRoom(prosody, room, { heard, present });
      await scene.bridgeInRoom(present, room);
    });

    afterAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      await stopClient(officer);
      await bridge.stop();
      await tchap.close();
      await bus.close();
      await gateway.stop();
      await prosody.stop();
      await nats.stop();
    });

    it("federation - an officer's message reaches Tchap, and the French answer comes back from a puppet", async () => {
      await officer.send(
        xml("message", { to: room, type: "groupchat" }, xml("body", {}, "Grenzübergang gesperrt")),
      );
      const delivered = await eventually(() =>
        atTchap.find((d) => d.event.content?.body === "Grenzübergang gesperrt"),
      );
      expect(delivered.target).toMatchObject(matrixRoom);
      expect(delivered.senderAgency?.name).toBe("Bundespolizei");
      expect(delivered.event.sender.displayName).toBe("Weber");

      await tchap.publish(message(matrixRoom, "Bien noté, merci", { sender: scene.claireAsSender }));
      const answer = await eventually(() => heard.find((m) => m.getChildText("body") === "Bien noté, merci"));
      expect(answer.attrs["from"]).toBe(`${room}/Claire Martin (Ministère de l'Intérieur)`);
    });

    it("federation - a marked message the route does not allow stays out of the room, and its sender is told", async () => {
      // FR-DR from Tchap: bpol <-> dinum-mi allows up to DE-VS-NFD, and FR-DR is declared equivalent,
      // so it arrives, labelled as Germany marks it.
      await tchap.publish(
        message(matrixRoom, "Diffusion restreinte : point de situation", {
          sender: scene.claireAsSender,
          marking: "FR-DR",
        }),
      );
      const labelled = await eventually(() =>
        heard.find(
          (m) => m.getChildText("body")?.endsWith("Diffusion restreinte : point de situation") === true,
        ),
      );
      expect(labelled.getChildText("body")).toBe(
        "[VS-NUR FÜR DEN DIENSTGEBRAUCH] Diffusion restreinte : point de situation",
      );

      // A marking no agreement covers is refused, and the French sender gets a notice.
      const secret = message(matrixRoom, "Secret défense", {
        sender: scene.claireAsSender,
        marking: "FR-SECRET",
      });
      await tchap.publish(secret);
      const notice = await eventually(() => atTchap.find((d) => d.event.relations?.replyTo === secret.id));
      expect(notice.event.type).toBe("notice");
      expect(notice.event.content?.body).toContain("marking-unknown");
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(heard.some((m) => m.getChildText("body")?.includes("Secret défense") === true)).toBe(false);
    });

    it("federation - an officer's message labelled above what the route allows reaches no one, and its sender gets a stanza error", async () => {
      await officer.send(
        xml(
          "message",
          { to: room, type: "groupchat", id: "vs-v-1" },
          xml("body", {}, "Lagebild VS-VERTRAULICH"),
          xml("securitylabel", { xmlns: NS.label }, xml("displaymarking", {}, "VS-VERTRAULICH")),
        ),
      );
      const error = await eventually(() =>
        heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === "vs-v-1"),
      );
      const text = error.getChild("error")?.getChildText("text", NS.stanzas);
      expect(text).toContain("Ministère de l'Intérieur");
      expect(error.getChild("error")?.getChild("policy-violation", NS.stanzas)).toBeDefined();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(atTchap.some((d) => d.event.content?.body === "Lagebild VS-VERTRAULICH")).toBe(false);
    });
  },
);
