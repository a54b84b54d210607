import { describe, expect, it } from "vitest";
import { BridgeCrypto } from "../../../bridges/matrix/crypto/BridgeCrypto.js";
import { readCryptoTransaction } from "../../../bridges/matrix/cryptoTransaction.js";
import { createLogger } from "../../../gateway/platform/log.js";

/** A homeserver that takes every key and knows no one: enough for a device to start. */
function homeserver(paths: string[]) {
  return {
    upsertDevice: () => Promise.resolve(true),
    sendEventAsDevice: () => Promise.reject(new Error("not used")),
    deviceRequest: (_method: string, path: string) => {
      paths.push(path);
      if (path.endsWith("/keys/upload"))
        return Promise.resolve({ one_time_key_counts: { signed_curve25519: 50 } });
      if (path.endsWith("/keys/query")) return Promise.resolve({ device_keys: {}, failures: {} });
      return Promise.resolve({});
    },
  };
}

describe("Matrix bridge device", () => {
  it("Matrix bridge device - an id the crypto refuses in a transaction is never thrown", async () => {
    const logs: string[] = [];
    const paths: string[] = [];
    const device = await BridgeCrypto.start({
      client: homeserver(paths),
      userId: "@fedgate:tchap.localhost",
      deviceId: "FEDGATETEST",
      displayName: "fedgate bridge",
      log: createLogger("debug", "test", { write: (line: string) => logs.push(line) }),
    });
    expect(paths).toContain("/_matrix/client/v3/keys/upload");
    // The spec's grammar allows a five-digit port; the crypto refuses one over 65535.
    const { transaction, refused } = readCryptoTransaction({
      "org.matrix.msc3202.device_lists": { changed: ["@weber:bpol.localhost:99999"], left: [] },
    });
    expect(refused).toEqual([]);
    const asked = paths.length;
    await expect(device.receive(transaction)).resolves.toBeUndefined();
    // No user the device tracks: nothing taken in, nothing asked.
    expect(paths.length).toBe(asked);
    expect(logs.some((l) => l.includes("FG_NATIVE_INVALID"))).toBe(false);
    // The device goes on working.
    await expect(
      device.decrypt("!r:tchap.localhost", {
        type: "m.room.encrypted",
        room_id: "!r:tchap.localhost",
        sender: "@claire:tchap.localhost",
        event_id: "$e",
        origin_server_ts: 1,
        content: {
          algorithm: "m.megolm.v1.aes-sha2",
          ciphertext: "AwgA",
          session_id: "s",
          sender_key: "k",
          device_id: "D",
        },
      }),
    ).rejects.toMatchObject({ code: "FG_NATIVE_UNDECRYPTABLE" });
    await device.close();
  });

  it("Matrix bridge device - device list changes of users it does not track cost it nothing; those it tracks, a key query", async () => {
    const paths: string[] = [];
    let saves = 0;
    const device = await BridgeCrypto.start({
      client: homeserver(paths),
      userId: "@fedgate_weber:tchap.localhost",
      deviceId: "FEDGATEWEBER",
      displayName: "fedgate bridge",
      onChanged: () => {
        saves += 1;
        return Promise.resolve();
      },
      log: createLogger("silent"),
    });
    await device.encrypt("!r:tchap.localhost", "m.room.message", { body: "Lage" }, [
      "@claire:tchap.localhost",
    ]);
    paths.length = 0;
    saves = 0;
    const others = readCryptoTransaction({
      "org.matrix.msc3202.device_lists": {
        changed: ["@paul:tchap.localhost"],
        left: ["@anne:tchap.localhost"],
      },
    });
    await device.receive(others.transaction);
    expect({ paths, saves }).toEqual({ paths: [], saves: 0 });
    const claire = readCryptoTransaction({
      "org.matrix.msc3202.device_lists": { changed: ["@claire:tchap.localhost", "@paul:tchap.localhost"] },
    });
    await device.receive(claire.transaction);
    expect(paths).toContain("/_matrix/client/v3/keys/query");
    expect(saves).toBe(1);
    await device.close();
  });
});
