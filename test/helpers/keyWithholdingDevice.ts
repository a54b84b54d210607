/**
 * A Tchap user's device that encrypts with the bridge's own Rust crypto but keeps back the room keys it sends:
 * a test hands an encrypted event to the bridge first and its key later, when it chooses, as a homeserver
 * does when a key is slower than its message.
 */
import { randomUUID } from "node:crypto";
import { BridgeCrypto } from "../../bridges/matrix/crypto/BridgeCrypto.js";
import type { Logger } from "../../gateway/platform/log.js";

type Json = Record<string, unknown>;

export interface KeyWithholdingDevice {
  /** An `m.room.encrypted` event of `body`, as the homeserver would hand it to the bridge's bot `bot`. */
  encryptedText(room: string, body: string, bot: string): Promise<Json & { event_id: string }>;
  /** The room key kept back from `bot`'s device, as the to-device messages of a transaction. */
  heldKeyFor(bot: string): Json[];
  close(): Promise<void>;
}

export async function keyWithholdingDevice(options: {
  user: { userId: string; deviceId: string };
  /** The client-server API as that user. */
  call: (method: "POST" | "PUT", path: string, body: Json) => Promise<Json>;
  log: Logger;
}): Promise<KeyWithholdingDevice> {
  const { userId, deviceId } = options.user;
  const heldBack: Json[] = [];
  const device = await BridgeCrypto.start({
    client: {
      upsertDevice: () => Promise.resolve(false),
      sendEventAsDevice: () => Promise.reject(new Error("not used")),
      deviceRequest: async (method, path, body) => {
        if (path.startsWith("/_matrix/client/v3/sendToDevice/")) {
          heldBack.push(body);
          return {};
        }
        return await options.call(method, path, body);
      },
    },
    userId,
    deviceId,
    displayName: "a device that keeps its keys back",
    log: options.log,
  });
  return {
    encryptedText: async (room, body, bot) => ({
      type: "m.room.encrypted",
      room_id: room,
      sender: userId,
      event_id: `$held-key-${randomUUID()}`,
      origin_server_ts: Date.now(),
      content: await device.encrypt(room, "m.room.message", { msgtype: "m.text", body }, [bot]),
    }),
    heldKeyFor: (bot) => {
      const messages = (heldBack[0]?.["messages"] ?? {}) as Record<string, Json>;
      return Object.entries(messages[bot] ?? {}).map(([toDeviceId, content]) => ({
        to_user_id: bot,
        to_device_id: toDeviceId,
        type: "m.room.encrypted",
        sender: userId,
        content,
      }));
    },
    close: () => device.close(),
  };
}
