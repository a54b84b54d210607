/**
 * Who speaks for the agency: only users of the homeservers the bridge is configured for. Against a real
 * Synapse; a user of another homeserver is shown to the bridge by an Application Service transaction the
 * test sends itself (two federating Synapses would need TLS and federation set up for one assertion), and a
 * real official is shown as an outsider by a bridge configured for another server.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { directConversation } from "../../../schemas/contract/directConversations.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  connectBus,
  contentOf,
  deliverFromWeber,
  linkedRoom,
  Official,
  putTransaction,
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

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("no Matrix scene");
  return value;
}

/** A user of a homeserver the bridge does not serve. */
const eve = "@eve:evil.example";

describe.skipIf(scene === undefined)("Matrix bridge - users of other homeservers", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let links: LinkStore;
  let claire: Official;
  const bot = scene?.bot ?? "";

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    links = new LinkStore(await bus.keyValue(buckets.links));
    await links.start();
    bridge = await startMatrixBridge(bus, scene, log);
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
  });

  afterAll(async () => {
    try {
      links.stop();
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  /** The body of the bot's notice answering an event. */
  function botAnswer(room: string, eventId: string): Promise<string> {
    return eventually(
      async () => {
        const answer = (await claire.eventsFrom(room, bot)).find((e) => {
          const relates = contentOf(e)["m.relates_to"] as
            { "m.in_reply_to"?: { event_id?: unknown } } | undefined;
          return relates?.["m.in_reply_to"]?.event_id === eventId;
        });
        return answer === undefined ? undefined : String(contentOf(answer)["body"]);
      },
      20_000,
      `the bot answering ${eventId}`,
    );
  }

  function event(room: string, fields: Record<string, unknown>): Record<string, unknown> {
    return {
      room_id: room,
      sender: eve,
      event_id: `$eve-${randomUUID()}`,
      origin_server_ts: Date.now(),
      type: "m.room.message",
      ...fields,
    };
  }

  it("Matrix outsiders - a user of another homeserver in a linked room is not bridged, and the room is told why", async () => {
    const room = await linkedRoom(must(scene), bus, claire, "aussen");
    const joins = event(room, {
      type: "m.room.member",
      state_key: eve,
      content: { membership: "join", displayname: "Eve (Ministère)" },
    });
    const says = event(room, { content: { msgtype: "m.text", body: "Je parle pour le ministère" } });
    expect(await putTransaction(must(scene), bridge.url, [joins, says])).toBe(200);
    const after = await claire.say(room, "Et moi ?");
    await eventually(() => inbound.find((e) => e.source.messageId === after), 20_000, "Claire's message");
    expect(inbound.some((e) => e.sender.userId === eve)).toBe(false);
    expect(await botAnswer(room, String(says["event_id"]))).toContain("tchap.localhost");
  });

  it("Matrix outsiders - a user of another homeserver cannot open a direct chat with a ghost", async () => {
    // Weber spoke through the bridge before, so her ghost stands for someone.
    const linked = await linkedRoom(must(scene), bus, claire, "vorher");
    await deliverFromWeber(bus, tchapRoom(linked), { type: "message.created", content: { body: "Hallo" } });
    await eventually(
      async () => (await claire.eventsFrom(linked, weberGhost)).at(0),
      20_000,
      "Weber's hello",
    );
    const invite = event("!eve-dm:evil.example", {
      type: "m.room.member",
      state_key: weberGhost,
      content: { membership: "invite", is_direct: true },
    });
    expect(await putTransaction(must(scene), bridge.url, [invite])).toBe(200);
    const conversation = directConversation(eve, { network: "xmpp", instance: "bpol", userId: weber.userId });
    // The refusal is logged with its code; no direct chat was linked for her.
    await eventually(
      () => logLines.find((l) => l.includes("!eve-dm:evil.example") && l.includes("FG_NATIVE_INVALID")),
      20_000,
      "the refused invitation in the log",
    );
    expect(await links.resolve({ network: "matrix", instance: "tchap", conversation })).toBeUndefined();
  });

  it("Matrix outsiders - a user of another homeserver may not command the bot, even with power in the room", async () => {
    await links.create({
      id: "grenze",
      endpoints: [
        { ...weberXmppRoom, conversation: "grenze@conference.bpol.localhost" },
        { network: "stashcat", instance: "ni", conversation: "channel:7", agency: "polizei-ni" },
      ],
    });
    const room = await claire.createRoom();
    await claire.invite(room, bot);
    await eventually(
      async () => ((await claire.joinedMembers(room)).includes(bot) ? true : undefined),
      20_000,
      "the bot in the room",
    );
    const levels = await claire.state(room, "m.room.power_levels");
    await claire.setState(room, "m.room.power_levels", {
      ...levels,
      users: { ...(levels["users"] as Record<string, number>), [eve]: 100 },
    });
    const command = event(room, { content: { msgtype: "m.text", body: "!fedgate link grenze" } });
    expect(await putTransaction(must(scene), bridge.url, [command])).toBe(200);
    expect(await botAnswer(room, String(command["event_id"]))).toContain("tchap.localhost");
    expect(links.get("grenze")?.endpoints).toHaveLength(2);
  });

  it("Matrix outsiders - an official of a server the bridge is not configured for is refused in rooms and direct chats", async () => {
    const room = await linkedRoom(must(scene), bus, claire, "anderswo");
    await bridge.stop();
    bridge = await startMatrixBridge(bus, must(scene), log, {
      userServers: ["partner.localhost"],
      roomServers: ["tchap.localhost"],
    });
    const said = await claire.say(room, "Hallo?");
    expect(await botAnswer(room, said)).toContain("partner.localhost");
    expect(inbound.some((e) => e.source.messageId === said)).toBe(false);

    const dm = await claire.createRoom({
      preset: "trusted_private_chat",
      is_direct: true,
      invite: [weberGhost],
    });
    const refusal = await eventually(
      async () =>
        (await claire.timeline(dm)).find(
          (e) =>
            e["type"] === "m.room.member" &&
            e["state_key"] === weberGhost &&
            contentOf(e)["membership"] === "leave",
        ),
      20_000,
      "the ghost refusing the invitation",
    );
    expect(String(contentOf(refusal)["reason"])).toContain("partner.localhost");
    const conversation = directConversation(claire.userId, {
      network: "xmpp",
      instance: "bpol",
      userId: weber.userId,
    });
    expect(await links.resolve({ network: "matrix", instance: "tchap", conversation })).toBeUndefined();
  });
});
