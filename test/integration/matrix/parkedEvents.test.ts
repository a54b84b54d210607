/**
 * An encrypted event that reaches the Matrix bridge before its room key waits for it, and still waits when
 * the bridge is stopped and started again in between: the transaction that brought it was acknowledged, so
 * the homeserver never sends it again. Against a real Synapse and nats-server; the official's device is the
 * bridge's own Rust crypto, whose room key the test holds back.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import { MEGOLM_ROOM_STATE, keptEncryption, type KeptEncryption } from "../../helpers/encryptingClient.js";
import {
  connectBus,
  linkTchapRoom,
  putTransaction,
  startMatrixBridge,
  startMatrixScene,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";
import { keyWithholdingDevice } from "../../helpers/keyWithholdingDevice.js";

const log = createLogger("silent");
const scene = await startMatrixScene();

describe.skipIf(scene === undefined)("Matrix bridge - encrypted events waiting for their keys", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let encryption: KeptEncryption;

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    encryption = await keptEncryption("matrix-parked");
    bridge = await startMatrixBridge(bus, scene, log, { encryption });
  });

  afterAll(async () => {
    try {
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  it("Matrix bridge - a message whose key comes after a restart of the bridge is bridged once", async () => {
    if (scene === undefined) return;
    const bot = scene.bot;
    const paul = await scene.synapse.registerUser("paul.lefevre", "pw-paul");
    const call = async (method: "GET" | "POST" | "PUT", path: string, body?: Record<string, unknown>) => {
      const response = await fetch(`${scene.synapse.baseUrl}${path}`, {
        method,
        headers: { "content-type": "application/json", authorization: `Bearer ${paul.accessToken}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const answer = (await response.json()) as Record<string, unknown>;
      if (response.status !== 200)
        throw new Error(`${method} ${path}: ${String(response.status)} ${JSON.stringify(answer)}`);
      return answer;
    };
    const { room_id: room } = (await call("POST", "/_matrix/client/v3/createRoom", {
      name: "Cellule de crise (chiffrée)",
      initial_state: [MEGOLM_ROOM_STATE],
    })) as { room_id: string };
    await linkTchapRoom(bus, "attente", room);
    await call("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/invite`, { user_id: bot });
    await eventually(
      async () => {
        const { joined } = (await call(
          "GET",
          `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/joined_members`,
        )) as { joined: Record<string, unknown> };
        return bot in joined ? true : undefined;
      },
      20_000,
      "the bot in the room",
    );

    // Paul's device sends its room key to the bridge's device; the test holds it back.
    const paulDevice = await keyWithholdingDevice({ user: paul, call, log });
    try {
      const event = await paulDevice.encryptedText(room, "Clé après le redémarrage", bot);
      const eventId = event.event_id;
      expect(await putTransaction(scene, bridge.url, [event])).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(inbound.some((e) => e.source.messageId === eventId)).toBe(false);

      // Stopped while the message waits; the transaction that brought it was answered.
      await bridge.stop();
      bridge = await startMatrixBridge(bus, scene, log, { encryption });

      const toDevice = paulDevice.heldKeyFor(bot);
      expect(
        await putTransaction(scene, bridge.url, [], undefined, { "de.sorunome.msc2409.to_device": toDevice }),
      ).toBe(200);
      const bridged = await eventually(
        () => inbound.find((e) => e.source.messageId === eventId),
        20_000,
        "the message once its key came, after the restart",
      );
      expect(bridged).toMatchObject({
        sender: { userId: paul.userId },
        content: { body: "Clé après le redémarrage" },
      });
      // Once: it waits no more, in memory or in the bucket.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(inbound.filter((e) => e.source.messageId === eventId)).toHaveLength(1);
      const state = await bus.keyValue("fedgate_matrix_state");
      expect(await state.keys("parked.>")).toEqual([]);
    } finally {
      await paulDevice.close();
    }
  });
});
