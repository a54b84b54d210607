/**
 * Which Matrix rooms the bridge serves, against a real Synapse: rooms linked by a moderator's bot command,
 * Tchap's rules that forbid a link, encrypted rooms, direct chats with a ghost, and the bad input a room
 * can send.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "undici";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { directConversation } from "../../../schemas/contract/directConversations.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { IdentityStore } from "../../../gateway/platform/stores/IdentityStore.js";
import { JoinCodeStore } from "../../../gateway/platform/stores/JoinCodeStore.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  bpol,
  connectBus,
  contentOf,
  deliverFromWeber,
  linkTchapRoom,
  linkedRoom,
  Official,
  startMatrixBridge,
  startMatrixScene,
  tchapRoom,
  weber,
  weberGhost,
  weberXmppRoom,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const logLines: string[] = [];
const log = createLogger("warn", "test", {
  write: (chunk: string) => {
    logLines.push(chunk);
  },
});
const scene = await startMatrixScene();

/** The scene, inside tests that run only when it started. */
function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("no Matrix scene");
  return value;
}

describe.skipIf(scene === undefined)("Matrix bridge - rooms, direct chats and bad input", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let links: LinkStore;
  let claire: Official;
  let bob: Official;
  const bot = scene?.bot ?? "";

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    links = new LinkStore(await bus.keyValue(buckets.links));
    await links.start();
    // Synapse refuses events over 64 KiB, so a giant body is one over a lower limit.
    bridge = await startMatrixBridge(bus, scene, log, { maxBodyBytes: 4096 });
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
    bob = await Official.register(scene.synapse, "bob.durand", "Bob Durand");
  });

  afterAll(async () => {
    // The servers stop even when the set-up failed half-way.
    try {
      links.stop();
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  /** The bot's notices in a room, as they arrive. */
  function botSays(room: string, words: string): Promise<unknown> {
    return eventually(
      async () =>
        (await claire.eventsFrom(room, bot)).find((e) => String(contentOf(e)["body"]).includes(words)),
      20_000,
      `the bot saying "${words}"`,
    );
  }

  async function roomWithBot(body?: Record<string, unknown>): Promise<string> {
    const room = await claire.createRoom(body);
    await claire.invite(room, bot);
    await botSays(room, "!fedgate link");
    return room;
  }

  it("Matrix bridge - a moderator links a room by a bot command with a join code; others may not", async () => {
    await links.create({
      id: "grenze",
      description: "Grenzlage",
      endpoints: [
        weberXmppRoom,
        { network: "stashcat", instance: "ni", conversation: "channel:7", agency: "polizei-ni" },
      ],
    });
    const room = await roomWithBot();
    const codes = await JoinCodeStore.open(bus, log);
    const { code } = await codes.issue("grenze", {
      network: "matrix",
      instance: "tchap",
      agency: "dinum-mi",
    });
    await claire.invite(room, bob.userId);
    await bob.join(room);
    await bob.say(room, `!fedgate link ${code}`);
    await botSays(room, "Only room moderators (power level 50 or more)");
    expect(links.match({ network: "matrix", instance: "tchap", conversation: room })).toBeUndefined();

    await claire.say(room, `!fedgate link ${code}`);
    await botSays(room, "Linked to grenze: Grenzlage.");
    expect(
      await eventually(() => links.match({ network: "matrix", instance: "tchap", conversation: room }), 5000),
    ).toMatchObject({ link: { id: "grenze" }, endpoint: { agency: "dinum-mi", kind: "room" } });
    const said = await claire.say(room, "Jetzt verbunden");
    await eventually(
      () => inbound.find((e) => e.source.messageId === said),
      20_000,
      "the message on the bus",
    );

    await claire.say(room, "!fedgate link nirgendwo");
    await botSays(room, "Not done:");
    await claire.say(room, "!fedgate unlink");
    await botSays(room, "Unlinked.");
    expect(links.get("grenze")?.endpoints).toHaveLength(2);
  });

  it("Matrix bridge - Tchap's restricted rooms and rooms without federation are refused with the reason", async () => {
    const restricted = await roomWithBot({
      preset: "private_chat",
      initial_state: [
        { type: "im.vector.room.access_rules", state_key: "", content: { rule: "restricted" } },
      ],
    });
    await links.create({
      id: "restricted",
      endpoints: [
        { ...weberXmppRoom, conversation: "r@conference.bpol.localhost" },
        { network: "stashcat", instance: "ni", conversation: "channel:8", agency: "polizei-ni" },
      ],
    });
    await claire.say(restricted, "!fedgate link restricted");
    await botSays(restricted, "its access rule is restricted");
    const local = await roomWithBot({ preset: "private_chat", creation_content: { "m.federate": false } });
    await claire.say(local, "!fedgate link restricted");
    await botSays(local, "created without federation (m.federate: false)");
    expect(links.get("restricted")?.endpoints).toHaveLength(2);

    // Linked behind the bot's back (through the admin API): the bot refuses it in the room, and bridges nothing.
    const local2 = await claire.createRoom({
      preset: "private_chat",
      creation_content: { "m.federate": false },
    });
    await claire.invite(local2, bot);
    // The bot is in the room before the link exists: the link is checked when it appears.
    await botSays(local2, "!fedgate link");
    await linkTchapRoom(bus, "admin-linked", local2);
    await botSays(local2, "fedgate will not bridge this room");
    const said = await claire.say(local2, "Geht das raus?");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(inbound.some((e) => e.source.messageId === said)).toBe(false);
  });

  it("Matrix bridge - an encrypted linked room is told once that nothing is bridged", async () => {
    const room = await linkedRoom(must(scene), bus, claire, "verschluesselt");
    await claire.setState(room, "m.room.encryption", { algorithm: "m.megolm.v1.aes-sha2" });
    await botSays(room, "end-to-end encrypted");
    const encrypted = await claire.send(
      room,
      {
        algorithm: "m.megolm.v1.aes-sha2",
        ciphertext: "AwgAEnAc",
        sender_key: "x",
        session_id: "y",
        device_id: "Z",
      },
      "m.room.encrypted",
    );
    await claire.send(
      room,
      {
        algorithm: "m.megolm.v1.aes-sha2",
        ciphertext: "AwgAEnAd",
        sender_key: "x",
        session_id: "y",
        device_id: "Z",
      },
      "m.room.encrypted",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(inbound.some((e) => e.source.messageId === encrypted)).toBe(false);
    const notices = (await claire.eventsFrom(room, bot)).filter((e) =>
      String(contentOf(e)["body"]).includes("end-to-end encrypted"),
    );
    expect(notices).toHaveLength(1);
    // Nor does anything go in: a delivery to the room is refused rather than posted in plain text.
    await deliverFromWeber(bus, tchapRoom(room), { type: "message.created", content: { body: "Klartext" } });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await claire.timeline(room)).some((e) => contentOf(e)["body"] === "Klartext")).toBe(false);
  });

  it("Matrix bridge - a direct chat with a ghost reaches the remote person, and back", async () => {
    // Weber spoke through the bridge before, so her ghost is known.
    const linked = await linkedRoom(must(scene), bus, claire, "vorher");
    await deliverFromWeber(bus, tchapRoom(linked), { type: "message.created", content: { body: "Hallo" } });
    await eventually(
      async () => (await claire.eventsFrom(linked, weberGhost)).at(0),
      20_000,
      "Weber's hello",
    );

    const dm = await claire.createRoom({
      preset: "trusted_private_chat",
      is_direct: true,
      invite: [weberGhost],
    });
    await eventually(
      async () =>
        (await claire.timeline(dm)).some(
          (e) =>
            e["type"] === "m.room.member" &&
            e["state_key"] === weberGhost &&
            contentOf(e)["membership"] === "join",
        )
          ? true
          : undefined,
      20_000,
      "the ghost joining the direct chat",
    );
    const said = await claire.say(dm, "Können wir kurz sprechen?");
    const conversation = directConversation(claire.userId, {
      network: "xmpp",
      instance: "bpol",
      userId: weber.userId,
    });
    expect(
      await eventually(() => inbound.find((e) => e.source.messageId === said), 20_000, "the direct message"),
    ).toMatchObject({
      source: { conversation },
      content: { body: "Können wir kurz sprechen?" },
    });
    expect(links.match({ network: "matrix", instance: "tchap", conversation })?.endpoint).toMatchObject({
      kind: "direct",
      agency: "dinum-mi",
    });
    // The answer comes into the same room, from the ghost, and no bot is in it.
    await deliverFromWeber(
      bus,
      { network: "matrix", instance: "tchap", conversation, agency: "dinum-mi", kind: "direct" },
      {
        type: "message.created",
        content: { body: "Ja, gerne" },
        source: {
          network: "xmpp",
          instance: "bpol",
          conversation: directConversation(weber.userId, {
            network: "matrix",
            instance: "tchap",
            userId: claire.userId,
          }),
        },
      },
    );
    await eventually(
      async () => (await claire.eventsFrom(dm, weberGhost)).find((e) => contentOf(e)["body"] === "Ja, gerne"),
      20_000,
      "the answer in the direct chat",
    );
    expect((await claire.timeline(dm)).some((e) => e["sender"] === bot)).toBe(false);
    const identities = new IdentityStore(await bus.keyValue(buckets.identities));
    expect(
      await identities.remoteFor({ network: "matrix", instance: "tchap", userId: weberGhost }),
    ).toMatchObject({
      agency: bpol.id,
    });
  });

  it("Matrix bridge - bad input is refused with a log line, acknowledged, and the bridge keeps serving", async () => {
    const room = await linkedRoom(must(scene), bus, claire, "schlecht");
    const unknown = await claire.send(room, { msgtype: "m.hologram", body: "3D" });
    await botSays(room, "Not bridged:");
    const giant = await claire.send(room, { msgtype: "m.text", body: "x".repeat(10_000) });
    const unlinked = await claire.createRoom();
    await claire.invite(unlinked, bot);
    await botSays(unlinked, "!fedgate link");
    const stray = await claire.say(unlinked, "Niemand hört zu");

    // Straight to the endpoint, as a broken homeserver might send them: still answered 200, not retried.
    const hsToken = scene?.registration.hs_token ?? "";
    const response = await request(`${bridge.url}/_matrix/app/v1/transactions/broken-1`, {
      method: "PUT",
      headers: { authorization: `Bearer ${hsToken}`, "content-type": "application/json" },
      body: JSON.stringify({
        events: [
          "not an event",
          {
            type: "m.room.message",
            room_id: room,
            sender: claire.userId,
            event_id: "$no-content",
            origin_server_ts: 1,
          },
          {
            type: "m.room.message",
            room_id: room,
            sender: claire.userId,
            event_id: "$bad-content",
            origin_server_ts: 1,
            content: "x",
          },
          // Synapse itself refuses a body that is not a string; another homeserver might not.
          {
            type: "m.room.message",
            room_id: room,
            sender: claire.userId,
            event_id: "$wrong-type",
            origin_server_ts: 1,
            content: { msgtype: "m.text", body: 42 },
          },
        ],
      }),
    });
    await response.body.dump();
    expect(response.statusCode).toBe(200);

    const good = await claire.say(room, "Und das geht durch");
    await eventually(
      () => inbound.find((e) => e.source.messageId === good),
      20_000,
      "a good message after the bad ones",
    );
    // The linked room hears why; the unlinked one is not answered at every message.
    const answered = (await claire.eventsFrom(room, bot)).filter((e) =>
      String(contentOf(e)["body"]).startsWith("Not bridged:"),
    );
    expect(answered.length).toBeGreaterThanOrEqual(2);
    expect(
      (await claire.eventsFrom(unlinked, bot)).some((e) =>
        String(contentOf(e)["body"]).startsWith("Not bridged:"),
      ),
    ).toBe(false);
    for (const id of [unknown, giant, stray, "$no-content", "$bad-content", "$wrong-type"]) {
      expect(inbound.some((e) => e.source.messageId === id)).toBe(false);
      // Each one logged with its code; a malformed event's id is in its log line where it has one.
      const line = logLines.find(
        (l) => l.includes(JSON.stringify(id)) || (id === unknown && l.includes("m.hologram")),
      );
      expect(line, `log line for ${id}`).toContain("FG_NATIVE_INVALID");
    }
    expect(logLines.some((l) => l.includes("FG_NATIVE_INVALID") && l.includes("not an object"))).toBe(true);
  });
});
