/**
 * The Matrix bridge in encrypted rooms (bridges.matrix.encryption.enabled), against a real Synapse and
 * nats-server, with matrix-js-sdk's Rust crypto as the official's client: what she writes in an encrypted
 * linked room reaches the bus in clear, as from a plain room; what the bridge cannot decrypt never does;
 * what the other networks say reaches her encrypted by the device of its sender's ghost. Room keys reach the
 * bridge across its restarts too: a homeserver that failed to reach it holds it for down, and Synapse then
 * drops room keys for it, until the bridge's ping at start.
 */
import { stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EventType, MsgType, RelationType, type MatrixClient as JsClient } from "matrix-js-sdk";
import {
  MEGOLM_ROOM_STATE,
  keptEncryption,
  officialInEncryptedRoom,
  type KeptEncryption,
} from "../../helpers/encryptingClient.js";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { directConversation } from "../../../schemas/contract/directConversations.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  connectBus,
  deliverFromWeber,
  linkTchapRoom,
  putTransaction,
  serverName,
  Official,
  startMatrixBridge,
  startMatrixScene,
  tchapRoom,
  weberGhost,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";
import { keyWithholdingDevice } from "../../helpers/keyWithholdingDevice.js";

// The client logs every sync and key request, and its Rust crypto traces at debug level, to the console.
for (const level of ["debug", "info"] as const) vi.spyOn(console, level).mockImplementation(() => undefined);
const log = createLogger("silent");

/** One client-server API call as a user; fails with Synapse's answer unless it is 200. */
async function call(
  method: "POST" | "PUT",
  path: string,
  token: string,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  if (scene === undefined) throw new Error("no synapse");
  const response = await fetch(`${scene.synapse.baseUrl}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const answer = (await response.json()) as Record<string, unknown>;
  if (response.status !== 200)
    throw new Error(`${method} ${path}: ${String(response.status)} ${JSON.stringify(answer)}`);
  return answer;
}
const scene = await startMatrixScene();

describe.skipIf(scene === undefined)("Matrix bridge - encrypted rooms", () => {
  const inbound: NormalisedEvent[] = [];
  const deadLetters: string[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let claire: JsClient;
  let room = "";
  let encryption: KeptEncryption;

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    await bus.follow("FEDGATE_DEADLETTER", subjects.deadLetterAll, "start", (m) => {
      deadLetters.push(Buffer.from(m.data).toString("utf8"));
    });
    encryption = await keptEncryption("matrix-crypto");
    bridge = await startMatrixBridge(bus, scene, log, { encryption });
    ({ client: claire, room } = await officialInEncryptedRoom(
      scene.synapse,
      { user: "claire.martin", password: "pw-claire", roomName: "Cellule de crise (chiffrée)" },
      (created) => linkTchapRoom(bus, "chiffre", created),
      scene.bot,
    ));
  });

  /** The bot's notice answering `eventId`, as Claire's client shows it. */
  const botNoticeAnswering = (eventId: string) =>
    eventually(
      () =>
        claire
          .getRoom(room)
          ?.getLiveTimeline()
          .getEvents()
          .find((e) => e.getSender() === scene?.bot && e.replyEventId === eventId),
      30_000,
      `the bot's notice answering ${eventId}`,
    );

  afterAll(async () => {
    try {
      claire.stopClient();
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  it("Matrix bridge - what an official writes in an encrypted linked room reaches the bus in clear", async () => {
    const { event_id: sent } = await claire.sendTextMessage(room, "Point de situation à 14 h");
    const event = await eventually(
      () => inbound.find((e) => e.source.messageId === sent),
      30_000,
      "the decrypted message on the bus",
    );
    expect(event).toMatchObject({
      type: "message.created",
      source: { network: "matrix", instance: "tchap", conversation: room },
      sender: { userId: claire.getUserId() },
      content: { body: "Point de situation à 14 h" },
    });
    // A reply keeps its relation, which encryption leaves outside the ciphertext.
    const { event_id: reply } = await claire.sendMessage(room, {
      msgtype: MsgType.Text,
      body: "Reçu",
      "m.relates_to": { "m.in_reply_to": { event_id: sent } },
    });
    const replied = await eventually(
      () => inbound.find((e) => e.source.messageId === reply),
      30_000,
      "the decrypted reply on the bus",
    );
    expect(replied.relations?.replyTo).toBe(event.id);
  });

  it("Matrix bridge - an encrypted event the bridge holds no key for is never published", async () => {
    if (scene === undefined) return;
    // Another official's client that encrypts for no one: ciphertext of a session the bridge never got.
    const paul = await Official.register(scene.synapse, "paul.durand", "Paul Durand");
    await claire.invite(room, paul.userId);
    await paul.join(room);
    const opaque = await paul.send(
      room,
      {
        algorithm: "m.megolm.v1.aes-sha2",
        sender_key: "c2VuZGVyIGtleSBvZiBubyBkZXZpY2U",
        session_id: "bm8gc3VjaCBzZXNzaW9u",
        device_id: "NODEVICE",
        ciphertext: "QXdhQ2lwaGVydGV4dCB0aGF0IG9wZW5zIHdpdGggbm8ga2V5",
      },
      "m.room.encrypted",
    );
    const { event_id: after } = await claire.sendTextMessage(room, "Après le message illisible");
    await eventually(() => inbound.find((e) => e.source.messageId === after), 30_000, "the next message");
    expect(inbound.some((e) => e.source.messageId === opaque)).toBe(false);
    // Operators find it dead-lettered, once, as it came: ciphertext only.
    const letters = deadLetters.filter((l) => l.includes(opaque));
    expect(letters).toHaveLength(1);
    expect(JSON.parse(letters[0] ?? "{}")).toMatchObject({
      origin: "matrix-tchap",
      reason: { code: "FG_NATIVE_UNDECRYPTABLE" },
    });
    deadLetters.splice(0, deadLetters.length, ...deadLetters.filter((l) => !l.includes(opaque)));
    // And the room is told, as for any message the bridge does not carry.
    const notice = await botNoticeAnswering(opaque);
    expect(notice.getContent()).toMatchObject({ msgtype: "m.notice" });
    expect(String(notice.getContent()["body"])).toContain("Not bridged");
  });

  it("Matrix bridge - what the other networks say is encrypted by its ghost's device, and the official reads it", async () => {
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "Verstanden, wir übernehmen" },
    });
    const seen = await eventually(
      () =>
        claire
          .getRoom(room)
          ?.getLiveTimeline()
          .getEvents()
          .find(
            (e) => e.getSender() === weberGhost && e.getContent()["body"] === "Verstanden, wir übernehmen",
          ),
      30_000,
      "Claire's client to decrypt Weber's message",
    );
    expect(seen.getWireType()).toBe("m.room.encrypted");
    // From a device of Weber's ghost, not the bot's: clients refuse a key whose device is not the sender's.
    expect(seen.getSender()).toBe(weberGhost);
    const devices = await claire.getCrypto()?.getUserDeviceInfo([weberGhost]);
    expect(devices?.get(weberGhost)?.size).toBe(1);
    expect(deadLetters).toEqual([]);
  });

  it("Matrix bridge - edits, reactions and deletions go both ways in an encrypted room, encrypted where the spec says", async () => {
    const received = (match: (e: NormalisedEvent) => boolean, what: string) =>
      eventually(() => inbound.find(match), 30_000, what);
    const { event_id: original } = await claire.sendTextMessage(
      room,
      "Point de rendez-vous: pont de l'Europe",
    );
    const originalEvent = await received((e) => e.source.messageId === original, "the original");
    await claire.sendMessage(room, {
      msgtype: MsgType.Text,
      body: "* Point de rendez-vous: pont Pflimlin",
      "m.new_content": { msgtype: MsgType.Text, body: "Point de rendez-vous: pont Pflimlin" },
      "m.relates_to": { rel_type: RelationType.Replace, event_id: original },
    });
    expect(
      await received(
        (e) => e.type === "message.edited" && e.relations?.replaces === originalEvent.id,
        "the edit",
      ),
    ).toMatchObject({ content: { body: "Point de rendez-vous: pont Pflimlin" } });
    const { event_id: reaction } = await claire.sendEvent(room, EventType.Reaction, {
      "m.relates_to": { rel_type: RelationType.Annotation, event_id: original, key: "👍" },
    });
    expect(
      await received(
        (e) => e.type === "reaction.added" && e.relations?.reactsTo === originalEvent.id,
        "the reaction",
      ),
    ).toMatchObject({ content: { reaction: "👍" } });
    await claire.redactEvent(room, reaction);
    await received(
      (e) => e.type === "reaction.removed" && e.relations?.reactsTo === originalEvent.id,
      "the reaction taken back",
    );

    // And from XMPP: an edit and a reaction, encrypted by Weber's ghost; a deletion, a redaction (never encrypted).
    const first = await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "Lage unverändert" },
    });
    const fromWeber = () =>
      (claire.getRoom(room)?.getLiveTimeline().getEvents() ?? []).filter((e) => e.getSender() === weberGhost);
    const firstInRoom = await eventually(
      () => fromWeber().find((e) => e.getContent()["body"] === "Lage unverändert"),
      30_000,
      "Weber's message in Claire's client",
    );
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.edited",
      content: { body: "Lage angespannt" },
      relations: { replaces: first.id },
    });
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "reaction.added",
      content: { reaction: "✅" },
      relations: { reactsTo: first.id },
    });
    const related = (relType: string) =>
      fromWeber().find((e) => e.getContent()["m.relates_to"]?.rel_type === relType);
    const edit = await eventually(() => related(RelationType.Replace), 30_000, "the edit, decrypted");
    expect(edit.getWireType()).toBe("m.room.encrypted");
    expect(edit.getContent()).toMatchObject({
      "m.new_content": { body: "Lage angespannt" },
      "m.relates_to": { rel_type: RelationType.Replace, event_id: firstInRoom.getId() },
    });
    const weberReaction = await eventually(
      () => related(RelationType.Annotation),
      30_000,
      "the reaction, decrypted",
    );
    expect(weberReaction.getWireType()).toBe("m.room.encrypted");
    expect(weberReaction.getType()).toBe(EventType.Reaction);
    expect(weberReaction.getContent()["m.relates_to"]).toMatchObject({ key: "✅" });
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.deleted",
      relations: { redacts: first.id },
    });
    await eventually(() => (firstInRoom.isRedacted() ? true : undefined), 30_000, "Weber's message redacted");
  });

  it("Matrix bridge - the bot's notices in an encrypted room are encrypted by its device", async () => {
    if (scene === undefined) return;
    // A message the bridge refuses (an unknown msgtype) is answered by a notice: it may quote what was refused.
    const unknown = { msgtype: "org.example.unknown", body: "Inconnu" };
    const { event_id: refused } = await claire.sendEvent(room, EventType.RoomMessage, unknown as never);
    const notice = await botNoticeAnswering(refused);
    expect(notice.getWireType()).toBe("m.room.encrypted");
    expect(notice.getContent()).toMatchObject({ msgtype: "m.notice" });
    expect(String(notice.getContent()["body"])).toContain("Not bridged");
    expect(inbound.some((e) => e.source.messageId === refused)).toBe(false);
  });

  it("Matrix bridge - a message that comes before its room key is bridged once the key comes", async () => {
    if (scene === undefined) return;
    const bot = scene.bot;
    // Paul's device encrypts with the same Rust crypto, but the room key it sends to the bridge's device is
    // held back by the test: the message reaches the bridge first, the key a transaction later.
    const paul = await scene.synapse.registerUser("paul.lefevre", "pw-paul");
    await claire.invite(room, paul.userId);
    await call("POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`, paul.accessToken, {});
    const paulDevice = await keyWithholdingDevice({
      user: paul,
      call: (method, path, body) => call(method, path, paul.accessToken, body),
      log,
    });
    const event = await paulDevice.encryptedText(room, "Clé en retard", bot);
    const eventId = event.event_id;
    expect(await putTransaction(scene, bridge.url, [event])).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.some((e) => e.source.messageId === eventId)).toBe(false);

    const toDevice = paulDevice.heldKeyFor(bot);
    expect(
      await putTransaction(scene, bridge.url, [], undefined, { "de.sorunome.msc2409.to_device": toDevice }),
    ).toBe(200);
    const late = await eventually(
      () => inbound.find((e) => e.source.messageId === eventId),
      20_000,
      "the message once its key came",
    );
    expect(late).toMatchObject({ sender: { userId: paul.userId }, content: { body: "Clé en retard" } });
    await paulDevice.close();
  });

  it("Matrix bridge - an encrypted direct chat with a ghost: read by the ghost's device, answered encrypted", async () => {
    if (scene === undefined) return;
    // Müller has come into the room but never spoke: his ghost has no device until Claire writes to him.
    const mueller = { userId: "mueller@bpol.localhost", displayName: "Kommissar Müller" };
    const muellerGhost = `@fedgate_xmpp_bpol_mueller=40bpol.localhost:${serverName}`;
    await deliverFromWeber(bus, tchapRoom(room), { type: "member.joined", sender: mueller });
    await eventually(
      () => (claire.getRoom(room)?.getMember(muellerGhost)?.membership === "join" ? true : undefined),
      20_000,
      "Müller's ghost in the room",
    );
    const { room_id: dm } = await claire.createRoom({
      is_direct: true,
      invite: [muellerGhost],
      initial_state: [MEGOLM_ROOM_STATE],
    });
    await eventually(
      async () =>
        claire.getRoom(dm)?.getMember(muellerGhost)?.membership === "join" &&
        ((await claire.getCrypto()?.getUserDeviceInfo([muellerGhost], true))?.get(muellerGhost)?.size ?? 0) >
          0
          ? true
          : undefined,
      20_000,
      "Müller's ghost in the direct chat, with a device",
    );
    const conversation = directConversation(claire.getSafeUserId(), {
      network: "xmpp",
      instance: "bpol",
      userId: mueller.userId,
    });
    const { event_id: said } = await claire.sendTextMessage(dm, "Entre nous");
    const event = await eventually(
      () => inbound.find((e) => e.source.messageId === said),
      30_000,
      "Claire's words in the direct chat, decrypted",
    );
    expect(event).toMatchObject({ source: { conversation }, content: { body: "Entre nous" } });

    await deliverFromWeber(
      bus,
      { network: "matrix", instance: "tchap", conversation, agency: "dinum-mi", kind: "direct" },
      {
        type: "message.created",
        sender: mueller,
        content: { body: "Unter uns" },
        source: {
          network: "xmpp",
          instance: "bpol",
          conversation: directConversation(mueller.userId, {
            network: "matrix",
            instance: "tchap",
            userId: claire.getSafeUserId(),
          }),
        },
      },
    );
    const answer = await eventually(
      () =>
        claire
          .getRoom(dm)
          ?.getLiveTimeline()
          .getEvents()
          .find((e) => e.getSender() === muellerGhost && e.getContent()["body"] === "Unter uns"),
      30_000,
      "Müller's answer in the direct chat, decrypted",
    );
    expect(answer.getWireType()).toBe("m.room.encrypted");
  });

  it("Matrix bridge - a restart keeps the bridge's devices: nothing lost, nothing undecryptable", async () => {
    if (scene === undefined) return;
    const bot = scene.bot;
    const crypto = claire.getCrypto();
    const before = await crypto?.getUserDeviceInfo([bot, weberGhost], true);
    const deviceIds = (user: string, info: typeof before) => [...(info?.get(user)?.keys() ?? [])].sort();
    await bridge.stop();
    // Kept on disk, encrypted, and only for the bridge's user.
    expect((await stat(encryption.storeFile)).mode & 0o777).toBe(0o600);
    bridge = await startMatrixBridge(bus, scene, log, { encryption });

    // Claire's client goes on with the room key it shared before the restart: only the kept one opens it.
    const { event_id: sent } = await claire.sendTextMessage(room, "Après le redémarrage");
    const event = await eventually(
      () => inbound.find((e) => e.source.messageId === sent),
      30_000,
      "the message after the restart, decrypted",
    );
    expect(event.content?.body).toBe("Après le redémarrage");
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "Nach dem Neustart" },
    });
    await eventually(
      () =>
        claire
          .getRoom(room)
          ?.getLiveTimeline()
          .getEvents()
          .find((e) => e.getSender() === weberGhost && e.getContent()["body"] === "Nach dem Neustart"),
      30_000,
      "Claire's client to decrypt Weber's message after the restart",
    );
    // The same devices as before: no new device for Claire's client to distrust.
    const after = await crypto?.getUserDeviceInfo([bot, weberGhost], true);
    expect(deviceIds(weberGhost, after)).toEqual(deviceIds(weberGhost, before));
    expect(deviceIds(bot, after)).toEqual(deviceIds(bot, before));
    expect(deviceIds(weberGhost, after)).toHaveLength(1);
  });

  it("Matrix bridge - a room key sent just after a restart reaches the bridge, and its message is bridged", async () => {
    if (scene === undefined) return;
    await bridge.stop();
    // Something for the bridge while it is down: Synapse's transaction fails, it holds the bridge for down
    // and tries again 2 s later, then 4 s after that, then 8 s after that.
    await claire.setRoomTopic(room, "Pendant la panne du pont");
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    bridge = await startMatrixBridge(bus, scene, log, { encryption });

    // A new room key, shared with the bot's device in a to-device message while Synapse's next try is
    // still seconds away.
    await claire.getCrypto()?.forceDiscardSession(room);
    const { event_id: sent } = await claire.sendTextMessage(room, "Première clé après la panne");
    const event = await eventually(
      () => inbound.find((e) => e.source.messageId === sent),
      20_000,
      "the message encrypted with the key sent after the restart, decrypted",
    );
    expect(event.content?.body).toBe("Première clé après la panne");
  });

  it("Matrix bridge - with onlyCrossSignedDevices, a device its owner has not cross-signed gets no keys", async () => {
    if (scene === undefined) return;
    await bridge.stop();
    bridge = await startMatrixBridge(bus, scene, log, {
      encryption: { ...encryption, onlyCrossSignedDevices: true },
    });
    // Each of Weber's messages in Claire's client once: those seen before are not his next.
    const seen = new Set<string>();
    const weberSays = async (body: string) => {
      await deliverFromWeber(bus, tchapRoom(room), { type: "message.created", content: { body } });
      return await eventually(
        () =>
          claire
            .getRoom(room)
            ?.getLiveTimeline()
            .getEvents()
            .find(
              (e) =>
                e.getSender() === weberGhost &&
                !seen.has(e.getId() ?? "") &&
                (e.isDecryptionFailure() || e.getContent()["body"] === body),
            ),
        30_000,
        `Weber's "${body}" in Claire's client`,
      ).then((event) => {
        seen.add(event.getId() ?? "");
        return event;
      });
    };
    for (const event of claire.getRoom(room)?.getLiveTimeline().getEvents() ?? [])
      seen.add(event.getId() ?? "");
    // Claire's device was never cross-signed: Weber's words reach her client, but not their key.
    const refused = await weberSays("Nur für geprüfte Geräte");
    await eventually(
      () => (refused.isDecryptionFailure() ? true : undefined),
      10_000,
      "a decryption failure",
    );
    expect(refused.getContent()["body"]).not.toBe("Nur für geprüfte Geräte");

    // Claire sets up cross-signing, which signs her device: from then on it gets the keys.
    const crypto = claire.getCrypto();
    // The bridge's devices are cross-signed by their users: Claire's client sees Weber's as his own.
    const [ghostDevice = ""] =
      (await crypto?.getUserDeviceInfo([weberGhost], true))?.get(weberGhost)?.keys() ?? [];
    expect((await crypto?.getDeviceVerificationStatus(weberGhost, ghostDevice))?.signedByOwner).toBe(true);
    await crypto?.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest({
          type: "m.login.password",
          identifier: { type: "m.id.user", user: claire.getSafeUserId() },
          password: "pw-claire",
        });
      },
    });
    expect((await crypto?.getCrossSigningStatus())?.publicKeysOnDevice).toBe(true);
    const shared = await eventually(
      async () => {
        const said = await weberSays(`Jetzt geprüft ${String(Date.now())}`);
        return said.isDecryptionFailure() ? undefined : said;
      },
      30_000,
      "Weber's words readable on the cross-signed device",
    );
    expect(String(shared.getContent()["body"])).toContain("Jetzt geprüft");
  });
});
