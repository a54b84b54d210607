/**
 * Nothing lost, nothing doubled: Synapse restarted in the middle of a conversation, a transaction the
 * homeserver sends again, and the bridge restarted while officials keep writing.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "undici";
import type { Delivery, NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { bodiesStartingWith, eventually } from "../../helpers/fixtures.js";
import {
  bpol,
  connectBus,
  contentOf,
  deliverFromWeber,
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

const log = createLogger("silent");
const scene = await startMatrixScene();
/** The appservice ping every second, given a second: a frozen homeserver shows within seconds. */
const fastCheck = { connectionCheck: { intervalMs: 1000, timeoutMs: 1000 } };

describe.skipIf(scene === undefined)("Matrix bridge - restarts and retries", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge | undefined;
  let claire: Official;
  let room = "";

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    bridge = await startMatrixBridge(bus, scene, log, fastCheck);
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
    room = await linkedRoom(scene, bus, claire, "einsatz");
  });

  afterAll(async () => {
    // The servers stop even when the set-up failed half-way.
    try {
      await bridge?.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  function bridgedBodies(prefix: string): string[] {
    return bodiesStartingWith(inbound, prefix);
  }

  async function weberSaysInRoom(prefix: string): Promise<string[]> {
    return (await claire.eventsFrom(room, weberGhost))
      .map((e) => String(contentOf(e)["body"]))
      .filter((body) => body.startsWith(prefix));
  }

  it("Matrix bridge - Synapse restarted mid-conversation: nothing lost, nothing doubled, both ways", async () => {
    if (scene === undefined) return;
    await claire.say(room, "vorher 1");
    await eventually(() => (bridgedBodies("vorher").length === 1 ? true : undefined), 20_000);
    await scene.synapse.restart(async () => {
      // Delivered while the homeserver is down: retried until it is back.
      await deliverFromWeber(bus, tchapRoom(room), {
        type: "message.created",
        content: { body: "während 1" },
      });
      await new Promise((resolve) => setTimeout(resolve, 1500));
    });
    await claire.say(room, "nachher 1");
    await claire.say(room, "nachher 2");
    await eventually(
      () => (bridgedBodies("nachher").length === 2 ? true : undefined),
      30_000,
      "after restart",
    );
    await eventually(
      async () => ((await weberSaysInRoom("während")).length === 1 ? true : undefined),
      60_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(bridgedBodies("vorher")).toEqual(["vorher 1"]);
    expect(bridgedBodies("nachher")).toEqual(["nachher 1", "nachher 2"]);
    expect(await weberSaysInRoom("während")).toEqual(["während 1"]);
  });

  it("Matrix bridge - a delivery posted, its ack lost, handled again after Synapse and the bridge restarted: posted once", async () => {
    if (scene === undefined) return;
    const delivery = (body: string): Delivery => {
      const id = randomUUID();
      const event: NormalisedEvent = {
        specVersion: "1",
        id,
        source: { network: "xmpp", instance: "bpol", conversation: weberXmppRoom.conversation },
        sender: weber,
        timestamp: new Date().toISOString(),
        type: "message.created",
        content: { body },
      };
      return { specVersion: "1", id: `${id}.m`, event, target: tchapRoom(room), senderAgency: bpol };
    };
    // The bus has the delivery once more, as after an ack that never reached it: under another message id,
    // since the first is still in the bus's duplicate window.
    const handOver = async (d: Delivery, msgId: string): Promise<void> => {
      await bus.publish(subjects.outbound("matrix", "tchap"), encodeJson(d), { msgId });
    };
    const first = delivery("einmal 1");
    await handOver(first, first.id);
    await eventually(async () => ((await weberSaysInRoom("einmal")).length === 1 ? true : undefined), 20_000);
    // The bridge dies before its ack is stored, and Synapse restarts meanwhile, forgetting its transaction ids.
    await bridge?.stop();
    bridge = undefined;
    await scene.synapse.restart();
    await handOver(first, `${first.id}.again`);
    const second = delivery("einmal 2");
    await handOver(second, second.id);
    bridge = await startMatrixBridge(bus, scene, log, fastCheck);
    // Deliveries go out in order: once the second is in the room, the first was handled again before it.
    await eventually(
      async () => ((await weberSaysInRoom("einmal 2")).length === 1 ? true : undefined),
      60_000,
      "the delivery after the one handled again",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await weberSaysInRoom("einmal")).toEqual(["einmal 1", "einmal 2"]);
  });

  it("Matrix bridge - Synapse frozen with its connections open: the appservice ping fails within seconds, passes again after the thaw, and a delivery made meanwhile arrives once", async () => {
    if (scene === undefined) return;
    const serverAnswers = (expected: boolean) => () =>
      bridge?.checks().server === expected ? true : undefined;
    await eventually(serverAnswers(true), 10_000, "the homeserver answering");
    await scene.synapse.signal("SIGSTOP");
    const frozenAt = Date.now();
    let noticedMs = 0;
    try {
      await eventually(serverAnswers(false), 5000, "the check failing");
      noticedMs = Date.now() - frozenAt;
      await deliverFromWeber(bus, tchapRoom(room), {
        type: "message.created",
        content: { body: "gefroren 1" },
      });
      await new Promise((resolve) => setTimeout(resolve, 4000));
    } finally {
      await scene.synapse.signal("SIGCONT");
    }
    const thawedAt = Date.now();
    await eventually(serverAnswers(true), 20_000, "the check passing after the thaw");
    const recoveredMs = Date.now() - thawedAt;
    await eventually(
      async () => ((await weberSaysInRoom("gefroren")).length === 1 ? true : undefined),
      60_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await weberSaysInRoom("gefroren")).toEqual(["gefroren 1"]);
    console.error(
      `Matrix bridge, Synapse frozen: check failing after ${String(noticedMs)} ms, passing ${String(recoveredMs)} ms after the thaw`,
    );
  });

  it("Matrix bridge - a transaction sent again, or its events in another one, is bridged once", async () => {
    if (scene === undefined || bridge === undefined) return;
    const event = {
      type: "m.room.message",
      room_id: room,
      sender: claire.userId,
      event_id: `$${randomUUID()}`,
      origin_server_ts: Date.now(),
      content: { msgtype: "m.text", body: "wiederholt" },
    };
    const put = async (txnId: string): Promise<number> => {
      const response = await request(`${bridge?.url ?? ""}/_matrix/app/v1/transactions/${txnId}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${scene.registration.hs_token}` },
        body: JSON.stringify({ events: [event] }),
      });
      await response.body.dump();
      return response.statusCode;
    };
    expect(await put("again-1")).toBe(200);
    expect(await put("again-1")).toBe(200);
    expect(await put("again-2")).toBe(200);
    await eventually(() => (bridgedBodies("wiederholt").length > 0 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(bridgedBodies("wiederholt")).toEqual(["wiederholt"]);
  });

  it("Matrix bridge - the bridge restarted while officials write: each message bridged once, in order", async () => {
    if (scene === undefined) return;
    await bridge?.stop();
    bridge = undefined;
    await claire.say(room, "offline 1");
    await claire.say(room, "offline 2");
    await claire.say(room, "offline 3");
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "gepuffert 1" },
    });
    bridge = await startMatrixBridge(bus, scene, log, fastCheck);
    // Synapse retries the transactions it could not deliver, with a backoff of a few seconds.
    await eventually(
      () => (bridgedBodies("offline").length >= 3 ? true : undefined),
      60_000,
      "the retried transactions",
    );
    await eventually(
      async () => ((await weberSaysInRoom("gepuffert")).length === 1 ? true : undefined),
      20_000,
    );
    await claire.say(room, "online 1");
    await eventually(() => (bridgedBodies("online").length === 1 ? true : undefined), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(bridgedBodies("offline")).toEqual(["offline 1", "offline 2", "offline 3"]);
    expect(await weberSaysInRoom("gepuffert")).toEqual(["gepuffert 1"]);
  });
});
