/**
 * The bridge's devices for encrypted rooms: one for its bot, which decrypts what officials write, and one
 * for each ghost that speaks in an encrypted room, which encrypts what it says there. A message must come
 * from a device of its sender: clients refuse a room key whose device is not the sender's.
 *
 * Each device's keys live in memory (see BridgeCrypto), so each start makes new devices, each with an id of
 * its own: a device id whose keys changed would be taken by clients for an attack.
 */
import { randomBytes } from "node:crypto";
import { PermanentError } from "../../../schemas/contract/errors.js";
import type { Logger } from "../../../gateway/platform/log.js";
import type { MatrixClient } from "../MatrixClient.js";
import { BridgeCrypto } from "./BridgeCrypto.js";
import type { CryptoTransaction } from "./cryptoTransaction.js";

export interface BridgeDevicesOptions {
  client: MatrixClient;
  /** The name each device shows in Matrix clients' device lists. */
  deviceName: string;
  /** Most devices held at once: the bot's and ghosts' together. */
  maxDevices: number;
  log: Logger;
}

/** A fresh device id: letters and digits, as homeservers make them. */
function newDeviceId(): string {
  return `FEDGATE${randomBytes(5).toString("hex").toUpperCase()}`;
}

export class BridgeDevices {
  /** Each user's device, started or starting. */
  private readonly devices = new Map<string, Promise<BridgeCrypto>>();

  constructor(private readonly options: BridgeDevicesOptions) {}

  /**
   * The user's device, made at the homeserver on first use (the user must exist there). One that failed to
   * start is tried again on the next use. FG_PEER_REFUSED once maxDevices are held.
   */
  deviceFor(userId: string): Promise<BridgeCrypto> {
    const held = this.devices.get(userId);
    if (held !== undefined) return held;
    if (this.devices.size >= this.options.maxDevices)
      return Promise.reject(
        new PermanentError(
          "FG_PEER_REFUSED",
          `the bridge holds ${String(this.options.maxDevices)} encryption devices already`,
          { detail: { userId } },
        ),
      );
    const { client, deviceName, log } = this.options;
    const starting = BridgeCrypto.start({
      client,
      userId,
      deviceId: newDeviceId(),
      displayName: deviceName,
      log,
    });
    this.devices.set(userId, starting);
    starting.catch(() => {
      if (this.devices.get(userId) === starting) this.devices.delete(userId);
    });
    return starting;
  }

  /**
   * A transaction's encryption fields, for every device: each takes its own to-device messages and key
   * counts, and every one the device list changes of the users it shares rooms with.
   */
  async receive(transaction: CryptoTransaction): Promise<void> {
    for (const [userId, starting] of [...this.devices]) {
      let device: BridgeCrypto;
      try {
        device = await starting;
      } catch (error) {
        this.options.log.warn({ err: error, userId }, "Matrix encryption device did not start");
        continue;
      }
      await device.receive(transaction);
    }
  }

  async close(): Promise<void> {
    const devices = [...this.devices.values()];
    this.devices.clear();
    for (const starting of devices) await (await starting.catch(() => undefined))?.close();
  }
}
