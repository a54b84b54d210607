/**
 * The parts of an application service transaction that end-to-end encryption needs, read from a body the
 * homeserver sent (hostile input: every count and size is bounded, every id checked):
 *
 * - to-device messages for the AS's devices (MSC2409/MSC4203, `de.sorunome.msc2409.to_device`, each with
 *   `to_user_id` and `to_device_id`): room keys, Olm messages, key requests;
 * - device list changes of users who share a room with the AS's users (MSC3202, `org.matrix.msc3202.device_lists`);
 * - the AS's devices' one-time-key counts and unused fallback key types (MSC3202), so that they are topped up.
 *
 * A malformed entry is left out and named in `refused`; the rest of the transaction still counts.
 */
import { isUserId } from "./matrixIds.js";
import { isRecord } from "../kit/isRecord.js";
import type { CryptoTransaction, ToDeviceMessage } from "./crypto/DeviceChanges.js";

export type { CryptoTransaction, ToDeviceMessage };

type Json = Record<string, unknown>;

/** Synapse sends at most 100 to-device messages a transaction; ten times that is refused as hostile. */
export const maxToDeviceMessages = 1000;
/** The spec's limit on an event (64 KiB) bounds a to-device message too. */
export const maxToDeviceBytes = 65_536;
/** Device list changes in one transaction: users who share rooms with the AS's users. */
export const maxDeviceListUsers = 10_000;
/** Users and devices in the key counts: the AS's own devices only, so a few. */
export const maxCountedDevices = 1000;
/** Key algorithms per device, and the length of their names. */
const maxAlgorithms = 16;
const maxNameLength = 255;

/** The field names Synapse 1.160 sends (unstable prefixes), stable names first where a later one will. */
const TO_DEVICE = ["to_device", "de.sorunome.msc2409.to_device"];
const DEVICE_LISTS = ["device_lists", "org.matrix.msc3202.device_lists"];
const OTK_COUNTS = [
  "device_one_time_keys_count",
  "org.matrix.msc3202.device_one_time_keys_count",
  "org.matrix.msc3202.device_one_time_key_counts",
];
const FALLBACK_TYPES = [
  "device_unused_fallback_key_types",
  "org.matrix.msc3202.device_unused_fallback_key_types",
];

function isName(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= maxNameLength;
}

function firstPresent(body: Json, names: string[]): { name: string; value: unknown } | undefined {
  for (const name of names) if (body[name] !== undefined) return { name, value: body[name] };
  return undefined;
}

const ALL_FIELDS = [...TO_DEVICE, ...DEVICE_LISTS, ...OTK_COUNTS, ...FALLBACK_TYPES];

/**
 * The body's encryption fields that say something: Synapse sends an empty to-device list in every
 * transaction to an AS that receives ephemeral events.
 */
export function cryptoFields(body: Json): Json {
  const fields: Json = {};
  for (const name of ALL_FIELDS) {
    const value = body[name];
    const empty =
      value === undefined ||
      (Array.isArray(value) && value.length === 0) ||
      (isRecord(value) && Object.keys(value).length === 0);
    if (!empty) fields[name] = value;
  }
  return fields;
}

/** Whether the body carries anything for encryption: most transactions carry nothing. */
export function hasCryptoFields(body: Json): boolean {
  return Object.keys(cryptoFields(body)).length > 0;
}

function readToDevice(value: unknown, name: string, refused: string[]): ToDeviceMessage[] {
  if (!Array.isArray(value)) {
    refused.push(`${name} is not an array`);
    return [];
  }
  if (value.length > maxToDeviceMessages) refused.push(`${name} has over ${maxToDeviceMessages} messages`);
  const messages: ToDeviceMessage[] = [];
  for (const [index, entry] of (value as unknown[]).slice(0, maxToDeviceMessages).entries()) {
    const where = `${name}/${String(index)}`;
    if (!isRecord(entry)) {
      refused.push(`${where} is not an object`);
      continue;
    }
    const { to_user_id: toUserId, to_device_id: toDeviceId, type, sender, content } = entry;
    if (typeof toUserId !== "string" || !isUserId(toUserId) || !isName(toDeviceId)) {
      refused.push(`${where} names no valid recipient device`);
      continue;
    }
    if (!isName(type) || typeof sender !== "string" || !isUserId(sender) || !isRecord(content)) {
      refused.push(`${where} is not a to-device event (type, sender, content)`);
      continue;
    }
    if (Buffer.byteLength(JSON.stringify(entry), "utf8") > maxToDeviceBytes) {
      refused.push(`${where} is larger than ${maxToDeviceBytes} bytes`);
      continue;
    }
    messages.push({ toUserId, toDeviceId, event: { type, sender, content } });
  }
  return messages;
}

function readUserList(value: unknown, where: string, refused: string[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    refused.push(`${where} is not an array`);
    return [];
  }
  if (value.length > maxDeviceListUsers) refused.push(`${where} has over ${maxDeviceListUsers} users`);
  const users = (value as unknown[])
    .slice(0, maxDeviceListUsers)
    .filter((user): user is string => typeof user === "string" && isUserId(user));
  if (users.length < Math.min(value.length, maxDeviceListUsers))
    refused.push(`${where} has invalid user ids`);
  return users;
}

/** user → device → T, for the AS's devices; `read` turns one device's value into T, or undefined if bad. */
function readPerDevice<T>(
  value: unknown,
  name: string,
  refused: string[],
  read: (value: unknown) => T | undefined,
): Map<string, Map<string, T>> {
  const result = new Map<string, Map<string, T>>();
  if (!isRecord(value)) {
    refused.push(`${name} is not an object`);
    return result;
  }
  let devices = 0;
  for (const [userId, perDevice] of Object.entries(value)) {
    if (!isUserId(userId) || !isRecord(perDevice)) {
      refused.push(`${name} has an entry that is not a user's devices`);
      continue;
    }
    for (const [deviceId, entry] of Object.entries(perDevice)) {
      if (++devices > maxCountedDevices) {
        refused.push(`${name} names over ${maxCountedDevices} devices`);
        return result;
      }
      const parsed = isName(deviceId) ? read(entry) : undefined;
      if (parsed === undefined) {
        refused.push(`${name} has an invalid entry for a device of ${userId}`);
        continue;
      }
      const forUser = result.get(userId) ?? new Map<string, T>();
      forUser.set(deviceId, parsed);
      result.set(userId, forUser);
    }
  }
  return result;
}

function readCounts(value: unknown): Map<string, number> | undefined {
  if (!isRecord(value)) return undefined;
  const entries = Object.entries(value);
  if (entries.length > maxAlgorithms) return undefined;
  const counts = new Map<string, number>();
  for (const [algorithm, count] of entries) {
    if (!isName(algorithm) || typeof count !== "number" || !Number.isSafeInteger(count) || count < 0)
      return undefined;
    counts.set(algorithm, count);
  }
  return counts;
}

function readAlgorithms(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || value.length > maxAlgorithms) return undefined;
  return (value as unknown[]).every(isName) ? (value as string[]) : undefined;
}

/** The encryption fields of a transaction body; what is malformed is left out and named in `refused`. */
export function readCryptoTransaction(body: Json): { transaction: CryptoTransaction; refused: string[] } {
  const refused: string[] = [];
  const transaction: CryptoTransaction = {
    toDevice: [],
    deviceLists: { changed: [], left: [] },
    oneTimeKeyCounts: new Map(),
    unusedFallbackKeyTypes: new Map(),
  };
  const toDevice = firstPresent(body, TO_DEVICE);
  if (toDevice !== undefined) transaction.toDevice = readToDevice(toDevice.value, toDevice.name, refused);
  const lists = firstPresent(body, DEVICE_LISTS);
  if (lists !== undefined) {
    if (isRecord(lists.value)) {
      transaction.deviceLists = {
        changed: readUserList(lists.value["changed"], `${lists.name}/changed`, refused),
        left: readUserList(lists.value["left"], `${lists.name}/left`, refused),
      };
    } else refused.push(`${lists.name} is not an object`);
  }
  const counts = firstPresent(body, OTK_COUNTS);
  if (counts !== undefined)
    transaction.oneTimeKeyCounts = readPerDevice(counts.value, counts.name, refused, readCounts);
  const fallback = firstPresent(body, FALLBACK_TYPES);
  if (fallback !== undefined)
    transaction.unusedFallbackKeyTypes = readPerDevice(
      fallback.value,
      fallback.name,
      refused,
      readAlgorithms,
    );
  return { transaction, refused };
}
