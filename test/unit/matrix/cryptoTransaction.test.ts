import { describe, expect, it } from "vitest";
import {
  hasCryptoFields,
  maxCountedDevices,
  maxDeviceListUsers,
  maxToDeviceMessages,
  readCryptoTransaction,
} from "../../../bridges/matrix/cryptoTransaction.js";

const bot = "@fedgate:tchap.localhost";
const roomKey = {
  to_user_id: bot,
  to_device_id: "FEDGATEBRIDGE",
  type: "m.room.encrypted",
  sender: "@official:tchap.localhost",
  content: { algorithm: "m.olm.v1.curve25519-aes-sha2", ciphertext: {} },
};

describe("Matrix encryption fields of a transaction", () => {
  it("Matrix encryption fields - reads what Synapse 1.160 sends: to-device messages, device lists, key counts", () => {
    const { transaction, refused } = readCryptoTransaction({
      events: [],
      "de.sorunome.msc2409.to_device": [roomKey],
      "org.matrix.msc3202.device_lists": {
        changed: ["@official:tchap.localhost"],
        left: ["@gone:tchap.localhost"],
      },
      "org.matrix.msc3202.device_one_time_keys_count": {
        [bot]: { FEDGATEBRIDGE: { signed_curve25519: 49 } },
      },
      "org.matrix.msc3202.device_unused_fallback_key_types": {
        [bot]: { FEDGATEBRIDGE: ["signed_curve25519"] },
      },
    });
    expect(refused).toEqual([]);
    expect(transaction.toDevice).toEqual([
      {
        toUserId: bot,
        toDeviceId: "FEDGATEBRIDGE",
        event: { type: roomKey.type, sender: roomKey.sender, content: roomKey.content },
      },
    ]);
    expect(transaction.deviceLists).toEqual({
      changed: ["@official:tchap.localhost"],
      left: ["@gone:tchap.localhost"],
    });
    expect(transaction.oneTimeKeyCounts.get(bot)?.get("FEDGATEBRIDGE")).toEqual(
      new Map([["signed_curve25519", 49]]),
    );
    expect(transaction.unusedFallbackKeyTypes.get(bot)?.get("FEDGATEBRIDGE")).toEqual(["signed_curve25519"]);
    expect(hasCryptoFields({ events: [], "de.sorunome.msc2409.to_device": [roomKey] })).toBe(true);
    // Synapse sends an empty list in every transaction to an AS that receives ephemeral events.
    expect(hasCryptoFields({ events: [], "de.sorunome.msc2409.to_device": [] })).toBe(false);
    expect(hasCryptoFields({ events: [], ephemeral: [] })).toBe(false);
  });

  it("Matrix encryption fields - malformed entries are left out one by one and named; the rest counts", () => {
    const { transaction, refused } = readCryptoTransaction({
      "de.sorunome.msc2409.to_device": [
        roomKey,
        42,
        { ...roomKey, to_user_id: "not a user" },
        { ...roomKey, to_device_id: "" },
        { ...roomKey, sender: `@${"x".repeat(300)}:tchap.localhost` },
        { ...roomKey, content: "text" },
        { ...roomKey, content: { padding: "x".repeat(70_000) } },
      ],
      "org.matrix.msc3202.device_lists": { changed: ["@ok:tchap.localhost", 7, "nobody"], left: "all" },
      "org.matrix.msc3202.device_one_time_keys_count": {
        [bot]: { A: { signed_curve25519: -1 }, B: { signed_curve25519: 1.5 }, C: { signed_curve25519: 3 } },
        "not a user": { D: { signed_curve25519: 3 } },
      },
      "org.matrix.msc3202.device_unused_fallback_key_types": { [bot]: { A: "signed_curve25519" } },
    });
    expect(transaction.toDevice).toHaveLength(1);
    expect(transaction.deviceLists).toEqual({ changed: ["@ok:tchap.localhost"], left: [] });
    expect([...(transaction.oneTimeKeyCounts.get(bot)?.keys() ?? [])]).toEqual(["C"]);
    expect(transaction.oneTimeKeyCounts.has("not a user")).toBe(false);
    expect(transaction.unusedFallbackKeyTypes.size).toBe(0);
    expect(refused).toHaveLength(12);
    expect(refused.join("\n")).toContain("is larger than 65536 bytes");
  });

  it("Matrix encryption fields - counts are bounded: messages, device list users, devices", () => {
    const many = Array.from({ length: maxToDeviceMessages + 5 }, () => roomKey);
    const users = Array.from({ length: maxDeviceListUsers + 5 }, (_, i) => `@u${String(i)}:tchap.localhost`);
    const devices = Object.fromEntries(
      Array.from({ length: maxCountedDevices + 5 }, (_, i) => [`D${String(i)}`, { signed_curve25519: 1 }]),
    );
    const { transaction, refused } = readCryptoTransaction({
      "de.sorunome.msc2409.to_device": many,
      "org.matrix.msc3202.device_lists": { changed: users, left: [] },
      "org.matrix.msc3202.device_one_time_keys_count": { [bot]: devices },
    });
    expect(transaction.toDevice).toHaveLength(maxToDeviceMessages);
    expect(transaction.deviceLists.changed).toHaveLength(maxDeviceListUsers);
    expect(transaction.oneTimeKeyCounts.get(bot)?.size).toBe(maxCountedDevices);
    expect(refused).toHaveLength(3);
  });

  it("Matrix encryption fields - a field of the wrong shape is refused whole, never thrown", () => {
    const { transaction, refused } = readCryptoTransaction({
      "de.sorunome.msc2409.to_device": { not: "an array" },
      "org.matrix.msc3202.device_lists": [],
      "org.matrix.msc3202.device_one_time_keys_count": "many",
      "org.matrix.msc3202.device_unused_fallback_key_types": null,
    });
    expect(transaction.toDevice).toEqual([]);
    expect(transaction.oneTimeKeyCounts.size).toBe(0);
    expect(refused).toHaveLength(4);
  });
});
