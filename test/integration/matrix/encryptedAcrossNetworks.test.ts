/**
 * An encrypted Tchap room linked with an XMPP room and a Stashcat channel, end to end through the real core:
 * nats-server, the gateway, the Matrix bridge with encryption against Synapse, the XMPP bridge against
 * Prosody and the Stashcat bridge against the Stashcat-compatible server. The official's client is
 * matrix-js-sdk with its Rust crypto: what she writes reaches the other networks in clear, what they answer
 * she decrypts; a device she adds later and a member who joins later get the keys for what comes after,
 * and a member who leaves gets none for what comes after that.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MatrixEvent, type MatrixClient as JsClient } from "matrix-js-sdk";
import {
  createEncryptedRoom,
  encryptingClient,
  inviteBot,
  keptEncryption,
} from "../../helpers/encryptingClient.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { GatewayService } from "../../../gateway/core/GatewayService.js";
import { loadConfig } from "../../../gateway/platform/config/loadConfig.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { RunningStashcatBridge } from "../../../bridges/stashcat/StashcatBridge.js";
import { StashcatServer } from "../../harness/servers/stashcat/StashcatServer.js";
import { eventually, writeGatewayConfig } from "../../helpers/fixtures.js";
import { connectBus, startMatrixBridge, startMatrixScene, weberGhost } from "../../helpers/matrixScenes.js";
import { startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { addWeber, startXmppBridge, weberInRoom, type Hearing } from "../../helpers/xmppScenes.js";
import {
  einsatz,
  MEYER,
  Officer,
  stashcatBridgeConfigFor,
  startStashcatBridge,
  stashcatTarget,
  type StashcatScene,
} from "../../helpers/stashcatScenes.js";

// The client logs every sync and key request, and its Rust crypto traces at debug level, to the console.
for (const level of ["debug", "info"] as const) vi.spyOn(console, level).mockImplementation(() => undefined);
const log = createLogger("silent");

const scene = await startMatrixScene();
const prosody = scene === undefined ? undefined : await startProsodyOrSkip();
const mucRoom = "einsatz-chiffre@conference.bpol.localhost";
const passwords = { claire: "pw-claire", paul: "pw-paul" };

describe.skipIf(scene === undefined || prosody === undefined)(
  "Matrix bridge - an encrypted room bridged to XMPP and Stashcat through the core",
  () => {
    const hearing: Hearing = { heard: [], present: new Set() };
    const clients: JsClient[] = [];
    let bus: JetStreamBus;
    let gateway: GatewayService;
    let matrixBridge: RunningMatrixBridge;
    let xmppBridge: RunningXmppBridge;
    let stashcatBridge: RunningStashcatBridge;
    let stashcat: StashcatServer;
    let weber: XmppClient;
    let meyer: Officer;
    let claire: JsClient;
    let room = "";
    /** A second official, who joins the room in the middle of the conversation. */
    let paul: JsClient;

    /** Logs `user` in as a new device and starts its client with Rust crypto, in memory. */
    async function deviceOf(user: string, password: string): Promise<JsClient> {
      if (scene === undefined) throw new Error("no synapse");
      const response = await fetch(`${scene.synapse.baseUrl}/_matrix/client/v3/login`, {
        method: "POST",
        body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user }, password }),
      });
      const login = (await response.json()) as { user_id: string; access_token: string; device_id: string };
      const client = await encryptingClient({
        baseUrl: scene.synapse.baseUrl,
        userId: login.user_id,
        accessToken: login.access_token,
        deviceId: login.device_id,
      });
      clients.push(client);
      return client;
    }

    /** The event of `sender` in `client`'s timeline of the room whose decrypted body is `body`. */
    function decrypted(
      client: JsClient,
      sender: (id: string) => boolean,
      body: string,
    ): MatrixEvent | undefined {
      return client
        .getRoom(room)
        ?.getLiveTimeline()
        .getEvents()
        .find((e) => sender(e.getSender() ?? "") && e.getContent()["body"] === body);
    }

    /** Weber writes in the XMPP room; resolves once Claire's client has decrypted it from his ghost. */
    async function weberSays(body: string): Promise<MatrixEvent> {
      await weber.send(xml("message", { to: mucRoom, type: "groupchat" }, xml("body", {}, body)));
      return await eventually(
        () => decrypted(claire, (s) => s === weberGhost, body),
        30_000,
        `Claire's client to decrypt Weber's "${body}"`,
      );
    }

    beforeAll(async () => {
      if (scene === undefined || prosody === undefined) return;
      bus = await connectBus(scene, log);
      stashcat = await StashcatServer.start();
      const stashcatScene: StashcatScene = {
        nats: scene.nats,
        server: stashcat,
        seed: stashcat.seed,
        config: await stashcatBridgeConfigFor(stashcat),
        stop: () => stashcat.stop(),
      };

      await scene.synapse.registerUser("claire.martin", passwords.claire);
      await scene.synapse.registerUser("paul.durand", passwords.paul);
      claire = await deviceOf("claire.martin", passwords.claire);
      room = await createEncryptedRoom(claire, "Cellule de crise franco-allemande (chiffrée)");

      // One link, three networks, as an agency's admin creates it.
      const links = new LinkStore(await bus.keyValue(buckets.links));
      await links.start();
      await links.create({
        id: "chiffre",
        endpoints: [
          { network: "xmpp", instance: "bpol", conversation: mucRoom, agency: "bpol" },
          stashcatTarget(einsatz),
          { network: "matrix", instance: "tchap", conversation: room, agency: "dinum-mi" },
        ],
      });
      links.stop();

      gateway = await GatewayService.start(
        await loadConfig(await writeGatewayConfig(scene.nats.url, { links: [] }), {}),
        log,
      );
      matrixBridge = await startMatrixBridge(bus, scene, log, {
        encryption: await keptEncryption("matrix-crypto"),
      });
      xmppBridge = await startXmppBridge(bus, prosody, log);
      stashcatBridge = await startStashcatBridge(bus, stashcatScene, log);

      await addWeber(prosody);
      weber = await weberInRoom(prosody, mucRoom, hearing);
      await eventually(
        () => (hearing.present.has(`${mucRoom}/fedgate`) ? true : undefined),
        20_000,
        "the XMPP bridge in the room",
      );
      meyer = await Officer.login(stashcatScene, MEYER, log);

      await inviteBot(claire, room, scene.bot);
    }, 180_000);

    afterAll(async () => {
      try {
        for (const client of clients) client.stopClient();
        await stopClient(weber);
        await stashcatBridge.stop();
        await xmppBridge.stop();
        await matrixBridge.stop();
        await gateway.stop();
        await bus.close();
      } finally {
        await stashcat.stop();
        await prosody?.stop();
        await scene?.stop();
      }
    });

    it("Matrix bridge - the official writes encrypted, XMPP and Stashcat read in clear, and she decrypts their answers", async () => {
      await claire.sendTextMessage(room, "Point de situation : convoi à 14 h");
      const atXmpp = await eventually(
        () => hearing.heard.find((m) => m.getChildText("body") === "Point de situation : convoi à 14 h"),
        30_000,
        "Claire's words in the XMPP room",
      );
      // Said by her puppet in the room, not by the bridge's bot.
      expect(String(atXmpp.attrs["from"]).startsWith(`${mucRoom}/claire.martin`)).toBe(true);
      const atStashcat = await eventually(
        async () => {
          const messages = await meyer.read(einsatz);
          return messages.find((m) => m.plain.includes("Point de situation : convoi à 14 h"));
        },
        30_000,
        "Claire's words in the Stashcat channel",
      );
      // The service account writes for everyone: the text names her.
      expect(atStashcat.plain).toContain("claire.martin");

      const fromWeber = await weberSays("Verstanden, Konvoi um 14 Uhr");
      expect(fromWeber.getWireType()).toBe("m.room.encrypted");

      await meyer.say(einsatz, "Niedersachsen übernimmt ab der Grenze");
      const fromMeyer = await eventually(
        () =>
          decrypted(
            claire,
            (s) => s.startsWith("@fedgate_stashcat_ni_"),
            "Niedersachsen übernimmt ab der Grenze",
          ),
        30_000,
        "Claire's client to decrypt Meyer's answer",
      );
      expect(fromMeyer.getWireType()).toBe("m.room.encrypted");
      expect(fromMeyer.getSender()).toBe(`@fedgate_stashcat_ni_${String(MEYER)}:tchap.localhost`);
    });

    it("Matrix bridge - a device the official logs in later gets the keys of what the bridge sends after", async () => {
      const laptop = await deviceOf("claire.martin", passwords.claire);
      await eventually(() => laptop.getRoom(room), 30_000, "the room on Claire's second device");
      // The bridge can share a key only with a device whose keys are published; it learns of them from the
      // device list change the homeserver sends it once they are.
      await eventually(
        async () =>
          (await claire.getCrypto()?.getUserDeviceInfo([claire.getSafeUserId()], true))
            ?.get(claire.getSafeUserId())
            ?.has(laptop.getDeviceId() ?? "")
            ? true
            : undefined,
        30_000,
        "the keys of Claire's second device published",
      );
      // Weber goes on talking; what the bridge encrypts once the change reached it opens on the new device.
      const said: string[] = [];
      const seen = await eventually(
        async () => {
          const next = `Zweites Gerät: Lage unverändert (${String(said.length + 1)})`;
          said.push(next);
          await weber.send(xml("message", { to: mucRoom, type: "groupchat" }, xml("body", {}, next)));
          await new Promise((resolve) => setTimeout(resolve, 2000));
          return said.map((body) => decrypted(laptop, (s) => s === weberGhost, body)).find((e) => e);
        },
        30_000,
        "Claire's second device to decrypt Weber's message",
      );
      expect(seen.getWireType()).toBe("m.room.encrypted");
      // Only the messages that came before the bridge knew of the device may stay closed to it.
      expect(said.length).toBeLessThanOrEqual(2);
    });

    it("Matrix bridge - a member who joins later reads what comes after, never what came before", async () => {
      const before = await weberSays("Vor Pauls Ankunft");
      paul = await deviceOf("paul.durand", passwords.paul);
      await claire.invite(room, paul.getSafeUserId());
      await paul.joinRoom(room);
      await eventually(
        () =>
          claire.getRoom(room)?.getMember(paul.getSafeUserId())?.membership === "join" ? true : undefined,
        20_000,
        "Paul in the room",
      );

      const body = "Nach Pauls Ankunft";
      await weber.send(xml("message", { to: mucRoom, type: "groupchat" }, xml("body", {}, body)));
      const after = await eventually(
        () => decrypted(paul, (s) => s === weberGhost, body),
        30_000,
        "Paul's client to decrypt what Weber said after he joined",
      );
      expect(after.getWireType()).toBe("m.room.encrypted");

      // What Weber said before Paul joined, as Paul's client fetches it: it holds no key that opens it.
      const raw = await paul.fetchRoomEvent(room, before.getId() ?? "");
      const earlier = new MatrixEvent(raw);
      await paul.decryptEventIfNeeded(earlier);
      expect(earlier.isDecryptionFailure()).toBe(true);
      expect(earlier.getContent()["body"]).not.toBe("Vor Pauls Ankunft");
    });

    it("Matrix bridge - once a member leaves, the bridge encrypts with a new room key he never got", async () => {
      const sessionOf = (event: MatrixEvent): unknown => event.getWireContent()["session_id"];
      const first = await weberSays("Vor Pauls Abschied (1)");
      const second = await weberSays("Vor Pauls Abschied (2)");
      // Without a leave, one room key goes on.
      expect(sessionOf(second)).toBe(sessionOf(first));
      await paul.leave(room);
      await eventually(
        () =>
          claire.getRoom(room)?.getMember(paul.getSafeUserId())?.membership === "leave" ? true : undefined,
        20_000,
        "Paul gone from the room",
      );
      const after = await weberSays("Nach Pauls Abschied");
      expect(sessionOf(after)).not.toBe(sessionOf(second));
      // The events as they went over the wire, handed to Paul's client: the key he held opens what came
      // before he left; none of his opens what came after.
      const asPaulSees = async (event: MatrixEvent): Promise<MatrixEvent> => {
        const wire = new MatrixEvent({ ...event.event });
        await paul.decryptEventIfNeeded(wire);
        return wire;
      };
      expect((await asPaulSees(second)).getContent()["body"]).toBe("Vor Pauls Abschied (2)");
      expect((await asPaulSees(after)).isDecryptionFailure()).toBe(true);
    });
  },
);
