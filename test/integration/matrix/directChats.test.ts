/**
 * A direct chat is a room of exactly two people, against a real Synapse: a shared room never becomes one
 * (not by re-inviting a ghost with is_direct), a room opened with a third person is not taken as one, and a
 * third person arriving ends it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Endpoint, NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { directConversation } from "../../../schemas/contract/directConversations.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { encodeJson, keyToken } from "../../../gateway/platform/bus/KeyValueStore.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  connectBus,
  contentOf,
  deliverFromWeber,
  type Json,
  linkedRoom,
  Official,
  startMatrixBridge,
  startMatrixScene,
  tchapRoom,
  weber,
  weberGhost,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const log = createLogger("silent");
const scene = await startMatrixScene();

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("no Matrix scene");
  return value;
}

describe.skipIf(scene === undefined)("Matrix bridge - direct chats are two people's", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let claire: Official;
  let bob: Official;
  /** Claire's side of her direct chat with Weber. */
  let conversation = "";

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    bridge = await startMatrixBridge(bus, scene, log);
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
    bob = await Official.register(scene.synapse, "bob.durand", "Bob Durand");
    conversation = directConversation(claire.userId, {
      network: "xmpp",
      instance: "bpol",
      userId: weber.userId,
    });
    // Weber spoke through the bridge before, so her ghost stands for someone.
    const first = await linkedRoom(scene, bus, claire, "vorher");
    await deliverFromWeber(bus, tchapRoom(first), { type: "message.created", content: { body: "Hallo" } });
    await eventually(async () => (await claire.eventsFrom(first, weberGhost)).at(0), 20_000, "Weber's hello");
  });

  afterAll(async () => {
    try {
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  function toClaire(): Endpoint {
    return { network: "matrix", instance: "tchap", conversation, agency: "dinum-mi", kind: "direct" };
  }

  /** Weber writes to Claire alone, as the core delivers it. */
  async function weberWritesToClaire(body: string): Promise<void> {
    await deliverFromWeber(bus, toClaire(), {
      type: "message.created",
      content: { body },
      source: {
        network: "xmpp",
        instance: "bpol",
        conversation: directConversation(weber.userId, {
          network: "matrix",
          instance: "tchap",
          userId: claire.userId,
        }),
      },
    });
  }

  /** The room Claire's client finds Weber's words in. */
  async function roomWith(body: string, rooms: () => Promise<string[]>): Promise<string> {
    return eventually(
      async () => {
        for (const room of await rooms())
          if ((await claire.eventsFrom(room, weberGhost)).some((e) => contentOf(e)["body"] === body))
            return room;
        return undefined;
      },
      20_000,
      `Weber's "${body}"`,
    );
  }

  /** Claire's rooms, with every invitation accepted first (Weber's ghost opens a new direct chat so). */
  async function claireRooms(): Promise<string[]> {
    await claire.acceptInvitations();
    return claire.joinedRooms();
  }

  function ghostMembership(room: string): Promise<Json> {
    return eventually(
      async () =>
        (await claire.timeline(room)).findLast(
          (e) => e["type"] === "m.room.member" && e["state_key"] === weberGhost,
        ),
      20_000,
      "the ghost's membership",
    );
  }

  it("Matrix direct chats - a ghost re-invited with is_direct into a linked room does not make it a direct chat", async () => {
    const shared = await linkedRoom(must(scene), bus, claire, "geteilt");
    // What an attacker's client does: an invitation whose member content says is_direct.
    await claire.setState(shared, "m.room.member", { membership: "invite", is_direct: true }, weberGhost);
    const declined = await eventually(
      async () => {
        const member = await ghostMembership(shared);
        return contentOf(member)["membership"] === "leave" ? member : undefined;
      },
      20_000,
      "the ghost declining",
    );
    expect(String(contentOf(declined)["reason"])).toContain("direct chat");
    // What is said in the room stays the room's, and Weber's private words do not land in it.
    const said = await claire.say(shared, "Für alle im Raum");
    expect(
      await eventually(() => inbound.find((e) => e.source.messageId === said), 20_000, "the room message"),
    ).toMatchObject({ source: { conversation: shared } });
    await weberWritesToClaire("Nur für Claire");
    const privateRoom = await roomWith("Nur für Claire", claireRooms);
    expect(privateRoom).not.toBe(shared);
  });

  it("Matrix direct chats - a room opened with a ghost and a third person is not taken as a direct chat", async () => {
    const crowded = await claire.createRoom({
      preset: "trusted_private_chat",
      is_direct: true,
      invite: [weberGhost, bob.userId],
    });
    const left = await eventually(
      async () => {
        const member = await ghostMembership(crowded);
        return contentOf(member)["membership"] === "leave" ? member : undefined;
      },
      20_000,
      "the ghost leaving the crowded room",
    );
    expect(String(contentOf(left)["reason"])).toContain("two");
    await bob.join(crowded);
    const said = await claire.say(crowded, "Wer liest mit?");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(inbound.some((e) => e.source.messageId === said)).toBe(false);
  });

  it("Matrix direct chats - a third person in a direct chat ends it: nothing more is bridged from or to that room", async () => {
    const dm = await claire.createRoom({
      preset: "trusted_private_chat",
      is_direct: true,
      invite: [weberGhost],
    });
    await eventually(
      async () => (contentOf(await ghostMembership(dm))["membership"] === "join" ? true : undefined),
      20_000,
      "the ghost joining the direct chat",
    );
    const before = await claire.say(dm, "Unter vier Augen");
    expect(
      await eventually(
        () => inbound.find((e) => e.source.messageId === before),
        20_000,
        "the direct message",
      ),
    ).toMatchObject({ source: { conversation } });

    await claire.invite(dm, bob.userId);
    await bob.join(dm);
    await eventually(
      async () => (contentOf(await ghostMembership(dm))["membership"] === "leave" ? true : undefined),
      20_000,
      "the ghost leaving the room that is no longer private",
    );
    const fromBob = await bob.say(dm, "Ich lese jetzt mit");
    const after = await claire.say(dm, "Noch privat?");
    await weberWritesToClaire("Wieder unter vier Augen");
    const next = await roomWith("Wieder unter vier Augen", claireRooms);
    expect(next).not.toBe(dm);
    for (const id of [fromBob, after]) expect(inbound.some((e) => e.source.messageId === id)).toBe(false);
  });

  it("Matrix direct chats - a shared room remembered as a direct chat (by a hijack before this check) is not one", async () => {
    const shared = await linkedRoom(must(scene), bus, claire, "frueher-gekapert");
    // The state a hijack left behind: the shared room mapped as Claire's chat with Weber, both ways.
    const state = await bus.keyValue("fedgate_matrix_state");
    await state.put(`direct.room.${keyToken(shared)}`, encodeJson(conversation));
    await state.put(`direct.chat.${keyToken(conversation)}`, encodeJson(shared));
    const said = await claire.say(shared, "Wieder für alle");
    expect(
      await eventually(() => inbound.find((e) => e.source.messageId === said), 20_000, "the room message"),
    ).toMatchObject({ source: { conversation: shared } });
    await weberWritesToClaire("Privat, nicht im Raum");
    expect(await roomWith("Privat, nicht im Raum", claireRooms)).not.toBe(shared);
  });
});
