/**
 * End-to-bridge encryption for one device of the bridge (its bot's): the Rust crypto of matrix-sdk
 * (`OlmMachine`, its WebAssembly build) driven by what the homeserver pushes to the application service
 * instead of a /sync loop. The device is made by the AS itself (MSC4190), every request it needs goes out as
 * that device (MSC3202 device masquerading), and to-device messages, device list changes and one-time-key
 * counts come in with the AS's transactions (MSC2409/MSC4203, MSC3202; see cryptoTransaction.ts).
 *
 * The machine's store is in memory, or an IndexedDB store kept on disk (see CryptoStoreFile): with it, a
 * restart keeps the device's identity and sessions.
 *
 * Every use of the machine is serialised: a transaction's room keys must be in before the events they
 * open are decrypted, and a room key must be shared before a message is encrypted with it.
 */
import {
  CollectStrategy,
  DecryptionErrorCode,
  DecryptionSettings,
  DeviceId,
  DeviceLists,
  EncryptionSettings,
  HistoryVisibility,
  initAsync,
  KeysBackupRequest,
  KeysClaimRequest,
  KeysQueryRequest,
  KeysUploadRequest,
  MegolmDecryptionError,
  OlmMachine,
  RoomId,
  RoomMessageRequest,
  SignatureUploadRequest,
  StoreHandle,
  ToDeviceRequest,
  TrustRequirement,
  UserId,
} from "@matrix-org/matrix-sdk-crypto-wasm";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { isRecord } from "../../kit/isRecord.js";
import type { Logger } from "../../../gateway/platform/log.js";
import type { CryptoTransaction } from "./DeviceChanges.js";
import type { DeviceClient, DeviceRequestPath } from "./DeviceClient.js";
import type { RoomKey } from "./ParkedEvents.js";

type Json = Record<string, unknown>;
type OutgoingRequest = Awaited<ReturnType<OlmMachine["outgoingRequests"]>>[number];

export interface BridgeCryptoOptions {
  client: DeviceClient;
  /** The bot's user id: the AS's sender. */
  userId: string;
  /** The bot's device; created at the homeserver when missing. */
  deviceId: string;
  /** The device's name as clients list it. */
  displayName: string;
  /**
   * The device's store (IndexedDB, see CryptoStoreFile), encrypted with `key` (32 bytes); a store of that
   * name holding the device already brings back its identity and sessions. Without it, in memory.
   */
  store?: { name: string; key: Uint8Array };
  /** Called, inside the work on the machine, after each change worth keeping: the store is saved. */
  onChanged?: () => Promise<void>;
  /** Share room keys only with devices their owner cross-signed; else with every device. */
  onlyCrossSignedDevices?: boolean;
  /** Told of the room keys that came in (with to-device messages), inside the work on the machine. */
  onRoomKeys?: (keys: RoomKey[]) => void;
  log: Logger;
}

/** A decrypted room event: what was encrypted, and who encrypted it. */
export interface DecryptedEvent {
  type: string;
  content: Json;
  sender: string;
  senderDevice: string | undefined;
}

/** The parts of a room's `m.room.encryption` state that bound how long one room key is used. */
export interface RoomEncryption {
  rotation_period_ms?: unknown;
  rotation_period_msgs?: unknown;
}

/** Rounds of outgoing requests at one go: each answer may queue more (a key query, then a claim). */
const MAX_ROUNDS = 8;
/** Megolm's defaults when the room's state sets none: a week, a hundred messages. */
const DEFAULT_ROTATION_MS = 7 * 24 * 60 * 60 * 1000;
const DEFAULT_ROTATION_MSGS = 100;

let wasmReady: Promise<void> | undefined;

/** Loads the WebAssembly module once per process. */
function loadWasm(): Promise<void> {
  wasmReady ??= initAsync();
  return wasmReady;
}

function positiveInteger(value: unknown, fallback: number): bigint {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0
    ? BigInt(value)
    : BigInt(fallback);
}

function parseObject(text: string, what: string): Json {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new PermanentError("FG_INTERNAL", `${what} is not a JSON object`);
  return parsed as Json;
}

export class BridgeCrypto {
  /** The tail of the serialised work on the machine. */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly machine: OlmMachine,
    /** The store's handle, which holds its database open until freed. */
    private readonly storeHandle: StoreHandle | undefined,
    private readonly options: BridgeCryptoOptions,
  ) {}

  /** Creates the device at the homeserver, and a machine for it whose keys are uploaded before this resolves. */
  static async start(options: BridgeCryptoOptions): Promise<BridgeCrypto> {
    await loadWasm();
    await options.client.upsertDevice(options.deviceId, options.displayName, options.userId);
    const userId = new UserId(options.userId);
    const deviceId = new DeviceId(options.deviceId);
    const storeHandle =
      options.store === undefined
        ? undefined
        : await StoreHandle.openWithKey(options.store.name, options.store.key);
    const machine =
      storeHandle === undefined
        ? await OlmMachine.initialize(userId, deviceId)
        : await OlmMachine.initFromStore(userId, deviceId, storeHandle);
    const crypto = new BridgeCrypto(machine, storeHandle, options);
    const { onRoomKeys } = options;
    if (onRoomKeys !== undefined)
      machine.registerRoomKeyUpdatedCallback((keys) => {
        onRoomKeys(keys.map((key) => ({ roomId: key.roomId.toString(), sessionId: key.sessionId })));
        return Promise.resolve();
      });
    await crypto.exclusive(async () => {
      await crypto.sendOutgoing();
      await crypto.crossSign();
      await options.onChanged?.();
    });
    options.log.info(
      { deviceId: options.deviceId, ed25519: machine.identityKeys.ed25519.toBase64() },
      "Matrix bridge device ready for encrypted rooms",
    );
    return crypto;
  }

  get deviceId(): string {
    return this.options.deviceId;
  }

  /** The device's public keys, as clients see them in its device keys. */
  get identityKeys(): { curve25519: string; ed25519: string } {
    const keys = this.machine.identityKeys;
    return { curve25519: keys.curve25519.toBase64(), ed25519: keys.ed25519.toBase64() };
  }

  /**
   * Takes in a transaction's to-device messages for this device, key counts and the device list changes of
   * users it tracks (those it encrypted for), then
   * sends what they call for (new one-time keys, key queries). A request that fails is logged and stays
   * queued in the machine, sent with the next transaction or encryption: what came in is already taken.
   */
  async receive(transaction: CryptoTransaction): Promise<void> {
    const { userId, deviceId } = this.options;
    const toDevice = transaction.toDevice
      .filter((message) => message.toUserId === userId && message.toDeviceId === deviceId)
      .map((message) => message.event);
    const counts = transaction.oneTimeKeyCounts.get(userId)?.get(deviceId);
    const fallback = transaction.unusedFallbackKeyTypes.get(userId)?.get(deviceId);
    const forThisDevice = toDevice.length > 0 || counts !== undefined || fallback !== undefined;
    const lists = transaction.deviceLists;
    if (!forThisDevice && lists.changed.length + lists.left.length === 0) return;
    await this.exclusive(async () => {
      // Every device hears of every change; only those of users it tracks are news to it, and anything
      // taken in costs a write of the store.
      const tracked = new Set([...(await this.machine.trackedUsers())].map((user) => user.toString()));
      const changed = lists.changed.filter((user) => tracked.has(user));
      const left = lists.left.filter((user) => tracked.has(user));
      if (!forThisDevice && changed.length + left.length === 0) return;
      try {
        await this.machine.receiveSyncChanges(
          JSON.stringify(toDevice),
          new DeviceLists(
            changed.map((user) => new UserId(user)),
            left.map((user) => new UserId(user)),
          ),
          counts ?? new Map<string, number>(),
          fallback === undefined ? undefined : new Set(fallback),
        );
      } catch (cause) {
        // Refused whole (an id the crypto parses more strictly than the spec's grammar): failing the
        // transaction would make the homeserver send it again for ever.
        this.options.log.warn(
          { err: cause, code: "FG_NATIVE_INVALID", deviceId },
          "Matrix encryption fields of a transaction not taken",
        );
        return;
      }
      try {
        await this.sendOutgoing();
      } catch (error) {
        this.options.log.warn({ err: error }, "Matrix encryption request failed; it is sent again later");
      }
      await this.options.onChanged?.();
    });
  }

  /**
   * The clear event inside an `m.room.encrypted` one. FG_NATIVE_UNDECRYPTABLE when the device holds no key
   * for it (never shared with it, withheld, or not arrived yet), or it does not open.
   */
  async decrypt(roomId: string, event: Json): Promise<DecryptedEvent> {
    return await this.exclusive(async () => {
      let decrypted;
      try {
        decrypted = await this.machine.decryptRoomEvent(
          JSON.stringify(event),
          new RoomId(roomId),
          new DecryptionSettings(TrustRequirement.Untrusted),
        );
      } catch (cause) {
        const detail: Json = { roomId };
        if (typeof event["event_id"] === "string") detail["eventId"] = event["event_id"];
        if (cause instanceof MegolmDecryptionError) {
          detail["reason"] = DecryptionErrorCode[cause.code];
          if (cause.withheldCode !== undefined) detail["withheld"] = cause.withheldCode;
          // Not withheld, only not here yet: it may come with a later transaction.
          const sessionId = isRecord(event["content"]) ? event["content"]["session_id"] : undefined;
          if (
            cause.withheldCode === undefined &&
            typeof sessionId === "string" &&
            (cause.code === DecryptionErrorCode.MissingRoomKey ||
              cause.code === DecryptionErrorCode.UnknownMessageIndex)
          )
            detail["awaitedSession"] = sessionId;
        }
        throw new PermanentError(
          "FG_NATIVE_UNDECRYPTABLE",
          "an encrypted Matrix event the bridge cannot decrypt",
          {
            cause,
            detail,
          },
        );
      }
      const clear = parseObject(decrypted.event, "a decrypted event");
      const { type, content } = clear;
      if (typeof type !== "string" || !isRecord(content))
        throw new PermanentError(
          "FG_NATIVE_UNDECRYPTABLE",
          "a decrypted Matrix event without type or content",
          {
            detail: { roomId },
          },
        );
      return {
        type,
        content,
        sender: decrypted.sender.toString(),
        senderDevice: decrypted.senderDevice?.toString(),
      };
    });
  }

  /**
   * The content of an `m.room.encrypted` event carrying `content` as an event of `type`, for the room's
   * `members` (their devices get the room key first, through Olm sessions made as needed). Rotates the
   * room key as the room's `m.room.encryption` state says.
   */
  async encrypt(
    roomId: string,
    type: string,
    content: Json,
    members: readonly string[],
    encryption: RoomEncryption = {},
  ): Promise<Json> {
    return await this.exclusive(async () => {
      const users = (): UserId[] => members.map((member) => new UserId(member));
      await this.machine.updateTrackedUsers(users());
      // Key queries for new members first: a key can only be shared with devices the machine knows.
      await this.sendOutgoing();
      const claim = await this.machine.getMissingSessions(users());
      if (claim instanceof KeysClaimRequest) await this.send(claim);
      const settings = new EncryptionSettings();
      settings.historyVisibility = HistoryVisibility.Shared;
      settings.sharingStrategy =
        this.options.onlyCrossSignedDevices === true
          ? CollectStrategy.identityBasedStrategy()
          : CollectStrategy.allDevices();
      settings.rotationPeriod = positiveInteger(encryption.rotation_period_ms, DEFAULT_ROTATION_MS) * 1000n;
      settings.rotationPeriodMessages = positiveInteger(
        encryption.rotation_period_msgs,
        DEFAULT_ROTATION_MSGS,
      );
      const shares = await this.machine.shareRoomKey(new RoomId(roomId), users(), settings);
      for (const share of shares) await this.send(share);
      const encrypted = await this.machine.encryptRoomEvent(
        new RoomId(roomId),
        type,
        JSON.stringify(content),
      );
      // Kept before it is sent: a restart must not use the same message index of the room key again.
      await this.options.onChanged?.();
      return parseObject(encrypted, "an encrypted event");
    });
  }

  /** Lets go of the machine; nothing may use this object after. */
  async close(): Promise<void> {
    await this.exclusive(() => {
      this.machine.close();
      this.storeHandle?.free();
      return Promise.resolve();
    });
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /**
   * Gives the device's user a cross-signing identity that signs the device, once: clients then see the
   * device as its user's own, and only such devices get keys from senders who demand it. A homeserver that
   * refuses (one that asks the appservice to authenticate) leaves the device unsigned, which is logged.
   */
  private async crossSign(): Promise<void> {
    if ((await this.machine.crossSigningStatus()).hasMaster) return;
    const { client, userId, deviceId, log } = this.options;
    const device = { userId, deviceId };
    try {
      const requests = await this.machine.bootstrapCrossSigning(true);
      const keys: unknown = requests.uploadKeysRequest;
      if (keys instanceof KeysUploadRequest) await this.send(keys);
      await client.deviceRequest(
        "POST",
        "/_matrix/client/v3/keys/device_signing/upload",
        parseObject(requests.uploadSigningKeysRequest.body, "a request body"),
        device,
      );
      await this.send(requests.uploadSignaturesRequest);
    } catch (error) {
      log.warn({ err: error, userId, deviceId }, "Matrix bridge device not cross-signed");
    }
  }

  /** Sends what the machine has queued, until it queues nothing more. */
  private async sendOutgoing(): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const requests = await this.machine.outgoingRequests();
      if (requests.length === 0) return;
      for (const request of requests) await this.send(request);
    }
  }

  /** One request of the machine, as this device; its answer goes back to the machine. */
  private async send(request: OutgoingRequest): Promise<void> {
    const { client, userId, deviceId } = this.options;
    const device = { userId, deviceId };
    let answer: Json;
    const keysPath = keysPathOf(request);
    if (keysPath !== undefined)
      answer = await client.deviceRequest(
        "POST",
        keysPath,
        parseObject(request.body, "a request body"),
        device,
      );
    else if (request instanceof ToDeviceRequest) {
      const path =
        `/_matrix/client/v3/sendToDevice/${encodeURIComponent(request.event_type)}/${encodeURIComponent(request.txn_id)}` as const;
      answer = await client.deviceRequest("PUT", path, parseObject(request.body, "a request body"), device);
    } else if (request instanceof RoomMessageRequest) {
      const eventId = await client.sendEventAsDevice(
        request.room_id,
        request.event_type,
        parseObject(request.body, "a request body"),
        request.txn_id,
        device,
      );
      answer = { event_id: eventId };
    } else if (request instanceof KeysBackupRequest) {
      // Server-side key backup is never enabled for the bridge's device, so the machine never asks for it.
      this.options.log.warn("Matrix encryption asked for a key backup, which the bridge does not keep");
      return;
    } else return;
    if (request.id !== undefined)
      await this.machine.markRequestAsSent(request.id, request.type, JSON.stringify(answer));
  }
}

/** Where a request about keys is posted; undefined for the other kinds. */
function keysPathOf(request: OutgoingRequest): DeviceRequestPath | undefined {
  if (request instanceof KeysUploadRequest) return "/_matrix/client/v3/keys/upload";
  if (request instanceof KeysQueryRequest) return "/_matrix/client/v3/keys/query";
  if (request instanceof KeysClaimRequest) return "/_matrix/client/v3/keys/claim";
  if (request instanceof SignatureUploadRequest) return "/_matrix/client/v3/keys/signatures/upload";
  return undefined;
}
