/**
 * Room keys sent right after the Matrix bridge came back. A homeserver that failed to reach the bridge holds
 * it for down and tries again only after a growing back-off; until then Synapse drops the to-device messages
 * it has for the bridge (room keys) that come without room events, and they are never sent again. The bridge
 * asks the homeserver to try again as soon as it listens. Against a real Synapse and nats-server, with
 * matrix-js-sdk's Rust crypto as the official's client.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { MatrixClient as JsClient } from "matrix-js-sdk";
import { createEncryptedRoom, encryptingClient, inviteBot } from "../../helpers/encryptingClient.js";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  connectBus,
  linkTchapRoom,
  startMatrixBridge,
  startMatrixScene,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";
import { scratchDir } from "../../helpers/scratchDir.js";

// The client logs every sync and key request, and its Rust crypto traces at debug level, to the console.
for (const level of ["debug", "info"] as const) vi.spyOn(console, level).mockImplementation(() => undefined);
const log = createLogger("silent");
const scene = await startMatrixScene();

describe.skipIf(scene === undefined)("Matrix bridge - room keys after the bridge was down", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let claire: JsClient;
  let room = "";
  let encryption: { enabled: true; storeFile: string; storeKeyFile: string };

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    const dir = await scratchDir("matrix-keys-after-downtime");
    await writeFile(join(dir, "store.key"), `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    encryption = {
      enabled: true,
      storeFile: join(dir, "crypto.store"),
      storeKeyFile: join(dir, "store.key"),
    };
    bridge = await startMatrixBridge(bus, scene, log, { encryption });
    const user = await scene.synapse.registerUser("claire.martin", "pw-claire");
    claire = await encryptingClient({ baseUrl: scene.synapse.baseUrl, ...user });
    room = await createEncryptedRoom(claire, "Cellule de crise (chiffrée)");
    await linkTchapRoom(bus, "apres-panne", room);
    await inviteBot(claire, room, scene.bot);
  });

  afterAll(async () => {
    try {
      claire.stopClient();
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
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
});
