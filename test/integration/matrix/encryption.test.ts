/**
 * End-to-bridge encryption against a real Synapse, with an independent E2EE client as the official:
 * matrix-js-sdk with its Rust crypto (in-memory store, fake-indexeddb for what else wants IndexedDB). The
 * official makes an encrypted room and writes in it; the bridge's device, driven only by what Synapse pushes
 * in AS transactions (to-device room keys, device lists, key counts), decrypts it; the bridge encrypts a
 * reply, and the official's client decrypts that.
 */
import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it, vi } from "vitest";
import type { MatrixClient as JsClient, MatrixEvent } from "matrix-js-sdk";
import { encryptingClient, MEGOLM_ROOM_STATE } from "../../helpers/encryptingClient.js";
import { listenAppService, openTxnStore } from "../../../bridges/matrix/AppServiceEndpoint.js";
import { BridgeCrypto } from "../../../bridges/matrix/crypto/BridgeCrypto.js";
import type { CryptoTransaction } from "../../../bridges/matrix/cryptoTransaction.js";
import { MatrixClient } from "../../../bridges/matrix/MatrixClient.js";
import { generateRegistration } from "../../../bridges/matrix/registration.js";
import type { HttpListener } from "../../../gateway/platform/http/HttpListener.js";
import { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { FedgateError } from "../../../schemas/contract/errors.js";
import { freePort } from "../../harness/servers/serverProcess.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { startSynapseOrSkip } from "../../helpers/synapse.js";

type Json = Record<string, unknown>;

// The client logs every sync and key request at debug level; loglevel is what it logs through. Its Rust
// crypto turns its own tracing on at debug level, to the console.
for (const level of ["debug", "info"] as const) vi.spyOn(console, level).mockImplementation(() => undefined);
const log = createLogger("silent");
const port = await freePort();
const { registration, yaml } = generateRegistration({
  id: "fedgate",
  url: `http://127.0.0.1:${String(port)}`,
  serverName: "tchap.localhost",
});
const bot = "@fedgate:tchap.localhost";
const botDevice = "FEDGATEBRIDGE";

const nats = await startNatsOrSkip();
const synapse =
  nats === undefined ? undefined : await startSynapseOrSkip({ appServiceRegistrations: [yaml] });
if (synapse === undefined) await nats?.stop();

/** What the endpoint got: room events, and the encryption fields of each transaction. */
const roomEvents: Json[] = [];
const cryptoTransactions: CryptoTransaction[] = [];

function encryptedEventsIn(roomId: string): Json[] {
  return roomEvents.filter((event) => event["type"] === "m.room.encrypted" && event["room_id"] === roomId);
}

/** The event's plaintext as the bridge's device reads it, once it holds the key; undefined before. */
async function decrypted(crypto: BridgeCrypto, roomId: string, event: Json): Promise<Json | undefined> {
  try {
    return (await crypto.decrypt(roomId, event)).content;
  } catch (error) {
    if (error instanceof FedgateError && error.code === "FG_NATIVE_UNDECRYPTABLE") return undefined;
    throw error;
  }
}

/** The official's client, logged in on a device of its own, with Rust crypto, syncing. */
async function officialClient(userId: string, accessToken: string, deviceId: string): Promise<JsClient> {
  if (synapse === undefined) throw new Error("no synapse");
  return encryptingClient({ baseUrl: synapse.baseUrl, userId, accessToken, deviceId });
}

function timelineBodies(client: JsClient, roomId: string): MatrixEvent[] {
  return client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [];
}

describe.skipIf(synapse === undefined)(
  "Matrix encryption - against Synapse, with matrix-js-sdk's Rust crypto",
  () => {
    let endpoint: { server: HttpListener; bus: JetStreamBus } | undefined;
    let crypto: BridgeCrypto | undefined;
    let official: JsClient | undefined;

    afterAll(async () => {
      official?.stopClient();
      await crypto?.close();
      await endpoint?.server.close();
      await endpoint?.bus.close();
      await synapse?.stop();
      await nats?.stop();
    });

    it("Matrix encryption - the bridge decrypts an official's message and the official decrypts its reply", async () => {
      if (synapse === undefined || nats === undefined) return;
      const client = new MatrixClient({
        homeserverUrl: synapse.baseUrl,
        asToken: registration.as_token,
        log,
      });
      const bus = await JetStreamBus.connect({ servers: nats.url, log });
      // The endpoint listens before the device is made: making it is news Synapse pushes at once, and a
      // to-device message queued while Synapse takes the AS for down waits for the next transaction.
      // Transactions wait for the device instead (never drop what they carry).
      let cryptoStarted: (crypto: BridgeCrypto) => void = () => undefined;
      const cryptoReady = new Promise<BridgeCrypto>((resolve) => {
        cryptoStarted = resolve;
      });
      const server = await listenAppService(
        {
          hsToken: registration.hs_token,
          txns: await openTxnStore(bus),
          onCrypto: async (transaction) => {
            cryptoTransactions.push(transaction);
            await (await cryptoReady).receive(transaction);
          },
          onEvents: (events) => {
            roomEvents.push(...(events as Json[]));
            return Promise.resolve();
          },
          log,
        },
        "127.0.0.1",
        port,
      );
      endpoint = { server, bus };
      const bridgeCrypto = await BridgeCrypto.start({
        client,
        userId: bot,
        deviceId: botDevice,
        displayName: "fedgate bridge",
        log,
      });
      crypto = bridgeCrypto;
      cryptoStarted(bridgeCrypto);

      // The bridge's device is known to the homeserver, with the keys it uploaded.
      const registered = await synapse.registerUser("official", "pw-official");
      const keys = (await (
        await fetch(`${synapse.baseUrl}/_matrix/client/v3/keys/query`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${registered.accessToken}` },
          body: JSON.stringify({ device_keys: { [bot]: [] } }),
        })
      ).json()) as { device_keys: Record<string, Record<string, { keys: Record<string, string> }>> };
      expect(keys.device_keys[bot]?.[botDevice]?.keys[`ed25519:${botDevice}`]).toBe(
        bridgeCrypto.identityKeys.ed25519,
      );

      official = await officialClient(registered.userId, registered.accessToken, registered.deviceId);
      const { room_id: roomId } = await official.createRoom({
        name: "Cellule de crise",
        invite: [bot],
        initial_state: [MEGOLM_ROOM_STATE],
      });
      await client.joinRoom(roomId);
      await eventually(
        () => (official?.getRoom(roomId)?.getMember(bot)?.membership === "join" ? true : undefined),
        20_000,
        "the official's client to see the bridge joined",
      );

      await official.sendTextMessage(roomId, "Point de situation à 14 h");
      const [encrypted] = await eventually(
        () => (encryptedEventsIn(roomId).length > 0 ? encryptedEventsIn(roomId) : undefined),
        20_000,
        "the encrypted message in a transaction",
      );
      if (encrypted === undefined) throw new Error("no encrypted event");
      // On the wire, only ciphertext: the room event carries no plaintext.
      expect(JSON.stringify(encrypted)).not.toContain("Point de situation");
      const content = await eventually(
        () => decrypted(bridgeCrypto, roomId, encrypted),
        20_000,
        "the bridge to decrypt the message",
      );
      expect(content).toMatchObject({ msgtype: "m.text", body: "Point de situation à 14 h" });
      // The room key came as a to-device message pushed in a transaction (MSC2409), to the bridge's device.
      expect(
        cryptoTransactions.some((transaction) =>
          transaction.toDevice.some(
            (message) => message.toUserId === bot && message.toDeviceId === botDevice,
          ),
        ),
      ).toBe(true);

      // The reply: encrypted by the bridge for the room's members' devices, sent as the bridge's device.
      const reply = await bridgeCrypto.encrypt(
        roomId,
        "m.room.message",
        { msgtype: "m.text", body: "Bien reçu, relayé à la Bundespolizei" },
        await client.joinedMembers(roomId),
      );
      expect(JSON.stringify(reply)).not.toContain("Bien reçu");
      await client.sendEventAsDevice(roomId, "m.room.encrypted", reply, randomUUID(), {
        userId: bot,
        deviceId: botDevice,
      });
      const seen = await eventually(
        () =>
          timelineBodies(official as JsClient, roomId).find(
            (event) =>
              event.getSender() === bot &&
              event.getContent()["body"] === "Bien reçu, relayé à la Bundespolizei",
          ),
        20_000,
        "the official's client to decrypt the bridge's reply",
      );
      expect(seen.isEncrypted()).toBe(true);
      expect(seen.getWireType()).toBe("m.room.encrypted");
    });
  },
);
