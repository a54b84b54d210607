/**
 * The bridge's devices for encrypted rooms: one for its bot, which decrypts what officials write, and one
 * for each ghost that speaks in an encrypted room, which encrypts what it says there. A message must come
 * from a device of its sender: clients refuse a room key whose device is not the sender's.
 *
 * With a store file (see CryptoStoreFile) the devices outlive a restart: each user gets back the device it
 * had. Without one, their keys live in memory and each start makes new devices, each with an id of its own:
 * a device id whose keys changed would be taken by clients for an attack.
 */
import { randomBytes } from "node:crypto";
import { FedgateError, PermanentError } from "../../../schemas/contract/errors.js";
import type { Logger } from "../../../gateway/platform/log.js";
import { BridgeCrypto, type DecryptedEvent } from "./BridgeCrypto.js";
import type { CryptoTransaction } from "./DeviceChanges.js";
import type { DeviceClient } from "./DeviceClient.js";
import { CryptoStoreFile } from "./CryptoStoreFile.js";
import type { RoomKey } from "./ParkedEvents.js";

export interface BridgeDevicesOptions {
  client: DeviceClient;
  /** The name each device shows in Matrix clients' device lists. */
  deviceName: string;
  /** Most devices held at once: the bot's and ghosts' together. */
  maxDevices: number;
  /** Encrypt only for devices their owner cross-signed. */
  onlyCrossSignedDevices: boolean;
  /** Where the devices' stores are kept, and the key (32 bytes) they are encrypted with; else in memory. */
  store?: { file: string; key: Uint8Array };
  log: Logger;
}

/** Most room keys noted between two transactions. */
const MAX_ARRIVED_KEYS = 10_000;

/** The name every store's databases begin with. */
const STORE_PREFIX = "fedgate-crypto-";

/** A fresh device id: letters and digits, as homeservers make them. */
function newDeviceId(): string {
  return `FEDGATE${randomBytes(5).toString("hex").toUpperCase()}`;
}

export class BridgeDevices {
  /** Each user's device, started or starting. */
  private readonly devices = new Map<string, Promise<BridgeCrypto>>();
  /** Each user's device id, of devices started now or before a restart (with a store file). */
  private readonly deviceIds = new Map<string, string>();
  private readonly storeFile: CryptoStoreFile | undefined;
  /** Room keys that came in since takeRoomKeys was last asked. */
  private arrived: RoomKey[] = [];

  private constructor(private readonly options: BridgeDevicesOptions) {
    this.storeFile =
      options.store === undefined
        ? undefined
        : new CryptoStoreFile(options.store.file, STORE_PREFIX, () => ({
            devices: Object.fromEntries(this.deviceIds),
          }));
  }

  /** The devices, with those of the store file (if any) ready to be taken up again. */
  static async open(options: BridgeDevicesOptions): Promise<BridgeDevices> {
    const devices = new BridgeDevices(options);
    const stored = await devices.storeFile?.restore();
    for (const [userId, deviceId] of Object.entries(stored?.devices ?? {}))
      devices.deviceIds.set(userId, deviceId);
    return devices;
  }

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
    const { client, deviceName, store, onlyCrossSignedDevices, log } = this.options;
    const deviceId = this.deviceIds.get(userId) ?? newDeviceId();
    const save = this.storeFile === undefined ? undefined : () => this.save(userId, deviceId);
    const starting = BridgeCrypto.start({
      client,
      userId,
      deviceId,
      displayName: deviceName,
      onlyCrossSignedDevices,
      ...(store === undefined ? {} : { store: { name: `${STORE_PREFIX}${deviceId}`, key: store.key } }),
      ...(save === undefined ? {} : { onChanged: save }),
      onRoomKeys: (keys) => {
        // Bounded: they are taken after every transaction, which carries at most a few hundred.
        if (this.arrived.length < MAX_ARRIVED_KEYS) this.arrived.push(...keys);
      },
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

  /**
   * The clear event inside an encrypted one, by whichever device holds its key: the bot's in the rooms it
   * is in, a ghost's in a direct chat (where the bot is not). The bot's device is asked first; when none
   * holds the key, the bot's device's FG_NATIVE_UNDECRYPTABLE (or the first device's).
   */
  async decrypt(botUserId: string, roomId: string, event: Record<string, unknown>): Promise<DecryptedEvent> {
    const bot = await this.deviceFor(botUserId);
    const devices = [bot, ...(await this.startedDevices()).filter((device) => device !== bot)];
    let first: unknown;
    for (const device of devices) {
      try {
        return await device.decrypt(roomId, event);
      } catch (error) {
        if (!(error instanceof FedgateError) || error.code !== "FG_NATIVE_UNDECRYPTABLE") throw error;
        first ??= error;
      }
    }
    throw first;
  }

  /** The devices that started, in the order they were asked for. */
  private async startedDevices(): Promise<BridgeCrypto[]> {
    const started: BridgeCrypto[] = [];
    for (const starting of [...this.devices.values()]) {
      const device = await starting.catch(() => undefined);
      if (device !== undefined) started.push(device);
    }
    return started;
  }

  /** The room keys that came in since the last call: events waiting for them can be decrypted now. */
  takeRoomKeys(): RoomKey[] {
    const keys = this.arrived;
    this.arrived = [];
    return keys;
  }

  async close(): Promise<void> {
    const devices = [...this.devices.values()];
    this.devices.clear();
    for (const starting of devices) await (await starting.catch(() => undefined))?.close();
    await this.storeFile?.close();
  }

  /** Keeps the stores, and that `userId`'s device is `deviceId`, in the store file. */
  private async save(userId: string, deviceId: string): Promise<void> {
    this.deviceIds.set(userId, deviceId);
    await this.storeFile?.save();
  }
}
