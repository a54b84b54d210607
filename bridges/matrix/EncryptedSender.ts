/**
 * Sends an event into an encrypted room as one of the bridge's users (the bot, a ghost): encrypted by that
 * user's own device for every device of the room's joined and invited members, the room key rotated as the
 * room's m.room.encryption says. The event's transaction id stays outside the ciphertext, so that a retried
 * delivery still finds what it posted (it tells nothing of what was said).
 */
import type { MatrixClient } from "./MatrixClient.js";
import { EventType } from "./matrixEvents.js";
import { POSTED_MARKER } from "./transactionIds.js";
import type { BridgeDevices } from "./crypto/BridgeDevices.js";

export interface EncryptedSenderDeps {
  client: Pick<MatrixClient, "presentMembers" | "sendEventAsDevice">;
  devices: Pick<BridgeDevices, "deviceFor">;
  /** The room's m.room.encryption content, read as `asUser`; undefined for a plain room. */
  encryptionOf: (room: string, asUser: string) => Promise<Record<string, unknown> | undefined>;
}

export class EncryptedSender {
  constructor(private readonly deps: EncryptedSenderDeps) {}

  /** Whether what `userId` sends in the room is encrypted: the room is encrypted. */
  async encrypts(userId: string, room: string): Promise<boolean> {
    // Read as the sender, a member of the room: a ghost's direct chat has no bot in it.
    return (await this.deps.encryptionOf(room, userId)) !== undefined;
  }

  /**
   * Sends `content` as an event of `type` encrypted, and returns its id; undefined, sending nothing, when
   * the room is plain.
   */
  async send(
    userId: string,
    room: string,
    type: string,
    content: Record<string, unknown>,
    txnId: string,
  ): Promise<string | undefined> {
    const { client, devices, encryptionOf } = this.deps;
    // Read as the sender, a member of the room: a ghost's direct chat has no bot in it.
    const encryption = await encryptionOf(room, userId);
    if (encryption === undefined) return undefined;
    const device = await devices.deviceFor(userId);
    const members = await client.presentMembers(room, userId);
    const sealed = await device.encrypt(room, type, content, members, encryption);
    return await client.sendEventAsDevice(
      room,
      EventType.encrypted,
      { ...sealed, [POSTED_MARKER]: txnId },
      txnId,
      { userId, deviceId: device.deviceId },
    );
  }
}
