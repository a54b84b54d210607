/**
 * Files in encrypted rooms, against a real Synapse and nats-server, with matrix-js-sdk's Rust crypto as the
 * official's client: an official's encrypted attachment (AES-256-CTR, the key in the encrypted event)
 * reaches the bus as its plaintext, as a plain file would; a file from another network reaches her as an
 * encrypted attachment that she decrypts with the key in the event. The official's side of the AES-CTR is
 * written here with node:crypto, apart from the bridge's.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MsgType, type MatrixClient as JsClient } from "matrix-js-sdk";
import { officialInEncryptedRoom } from "../../helpers/encryptingClient.js";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import { sampleFile, serveFile } from "../../helpers/fileServer.js";
import {
  connectBus,
  deliverFromWeber,
  linkTchapRoom,
  startMatrixBridge,
  startMatrixScene,
  tchapRoom,
  weberGhost,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

for (const level of ["debug", "info"] as const) vi.spyOn(console, level).mockImplementation(() => undefined);
const log = createLogger("silent");

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

/** What an official's client does to send a file in an encrypted room (spec: "Sending encrypted attachments"). */
function encryptAsClient(plaintext: Buffer): {
  ciphertext: Buffer;
  key: Buffer;
  file: (url: string) => Record<string, unknown>;
} {
  const key = randomBytes(32);
  const iv = Buffer.concat([randomBytes(8), Buffer.alloc(8)]);
  const cipher = createCipheriv("aes-256-ctr", key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return {
    ciphertext,
    key,
    file: (url) => ({
      url,
      key: {
        kty: "oct",
        key_ops: ["encrypt", "decrypt"],
        alg: "A256CTR",
        k: key.toString("base64url"),
        ext: true,
      },
      iv: iv.toString("base64").replace(/=+$/, ""),
      hashes: { sha256: createHash("sha256").update(ciphertext).digest("base64").replace(/=+$/, "") },
      v: "v2",
    }),
  };
}

const scene = await startMatrixScene();

describe.skipIf(scene === undefined)("Matrix bridge - files in encrypted rooms", () => {
  const inbound: NormalisedEvent[] = [];
  /** What the bridge logs at warn and above. */
  const bridgeLogs: string[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let claire: JsClient;
  let room = "";

  /** The bytes of an mxc URI, downloaded as Claire from the homeserver's authenticated media. */
  async function download(mxc: string): Promise<Buffer> {
    if (scene === undefined) throw new Error("no synapse");
    const path = mxc.replace(/^mxc:\/\//, "");
    const response = await fetch(`${scene.synapse.baseUrl}/_matrix/client/v1/media/download/${path}`, {
      headers: { authorization: `Bearer ${claire.getAccessToken() ?? ""}` },
    });
    expect(response.status).toBe(200);
    return Buffer.from(await response.arrayBuffer());
  }

  async function upload(bytes: Buffer): Promise<string> {
    const { content_uri: mxc } = await claire.uploadContent(bytes, {
      type: "application/octet-stream",
      name: "encrypted",
    });
    return mxc;
  }

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    const bridgeLog = createLogger("warn", "matrix", { write: (line: string) => bridgeLogs.push(line) });
    bridge = await startMatrixBridge(bus, scene, bridgeLog, { encryption: { enabled: true } });
    ({ client: claire, room } = await officialInEncryptedRoom(
      scene.synapse,
      { user: "claire.bernard", password: "pw-claire", roomName: "Cellule fichiers (chiffrée)" },
      (created) => linkTchapRoom(bus, "fichiers", created),
      scene.bot,
    ));
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

  it("Matrix bridge - an official's encrypted attachment reaches the bus as its plaintext, served by the bridge", async () => {
    const plaintext = sampleFile("pdf", 5000, 1);
    const { ciphertext, key, file } = encryptAsClient(plaintext);
    const mxc = await upload(ciphertext);
    const { event_id: sent } = await claire.sendMessage(room, {
      msgtype: MsgType.File,
      body: "ordre-operation.pdf",
      file: file(mxc),
      info: { mimetype: "application/pdf", size: plaintext.length },
    } as never);
    const event = await eventually(
      () => inbound.find((e) => e.source.messageId === sent),
      30_000,
      "the decrypted file on the bus",
    );
    const [attachment] = event.content?.attachments ?? [];
    expect(attachment).toMatchObject({
      name: "ordre-operation.pdf",
      mediaType: "application/pdf",
      size: plaintext.length,
      sha256: sha256(plaintext),
    });
    // The link gives the plaintext, which the homeserver never held.
    const fetched = await fetch(attachment?.url ?? "");
    expect(fetched.status).toBe(200);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(plaintext)).toBe(true);
    // The key travels in the link sealed, never as itself.
    for (const encoding of ["base64url", "base64", "hex"] as const)
      expect(decodeURIComponent(attachment?.url ?? "")).not.toContain(
        key.toString(encoding).replace(/=+$/, ""),
      );
    // The link is signed: altered, it gives nothing.
    const altered = await fetch((attachment?.url ?? "").replace(/k=[^&]*/, "k=AAAA"));
    expect(altered.status).toBe(403);
  });

  it("Matrix bridge - an encrypted attachment whose ciphertext does not match its hash is never published", async () => {
    const plaintext = sampleFile("pdf", 3000, 2);
    const { ciphertext, file } = encryptAsClient(plaintext);
    const tampered = Buffer.from(ciphertext);
    tampered[100] = (tampered[100] ?? 0) ^ 0xff;
    const { event_id: bad } = await claire.sendMessage(room, {
      msgtype: MsgType.File,
      body: "falsifie.pdf",
      file: file(await upload(tampered)),
      info: { mimetype: "application/pdf", size: plaintext.length },
    } as never);
    const { event_id: badKey } = await claire.sendMessage(room, {
      msgtype: MsgType.File,
      body: "cle-courte.pdf",
      file: { ...file(await upload(ciphertext)), iv: "AAAA" },
    } as never);
    // Larger than the limit by the event's own word: refused before any download.
    const { event_id: huge } = await claire.sendMessage(room, {
      msgtype: MsgType.File,
      body: "enorme.pdf",
      file: file(await upload(ciphertext)),
      info: { mimetype: "application/pdf", size: 10 ** 12 },
    } as never);
    const { event_id: after } = await claire.sendTextMessage(room, "Après les fichiers refusés");
    await eventually(() => inbound.find((e) => e.source.messageId === after), 30_000, "the next message");
    // Each for its own reason, as a file the bridge refuses, not as a failure of the bridge.
    const refusals = bridgeLogs.filter((line) => line.includes("FG_ATTACHMENT_INVALID"));
    for (const [eventId, reason] of [
      [bad, "hash-mismatch"],
      [badKey, "iv-invalid"],
      [huge, "1000000000000"],
    ] as const)
      expect(
        refusals.some((line) => line.includes(eventId) && line.includes(reason)),
        reason,
      ).toBe(true);
    expect(inbound.some((e) => [bad, badKey, huge].includes(e.source.messageId ?? ""))).toBe(false);
  });

  it("Matrix bridge - a file from another network reaches the official as an encrypted attachment", async () => {
    const image = sampleFile("png", 4000, 3);
    const files = await serveFile(image, "image/png");
    try {
      await deliverFromWeber(bus, tchapRoom(room), {
        type: "message.created",
        content: { attachments: [files.attachment("lagekarte.png")] },
      });
      const seen = await eventually(
        () =>
          claire
            .getRoom(room)
            ?.getLiveTimeline()
            .getEvents()
            .find((e) => e.getSender() === weberGhost && e.getContent()["msgtype"] === "m.image"),
        30_000,
        "Claire's client to decrypt Weber's image",
      );
      expect(seen.getWireType()).toBe("m.room.encrypted");
      const content = seen.getContent();
      expect(content["url"]).toBeUndefined();
      expect(content).toMatchObject({
        body: "lagekarte.png",
        info: { mimetype: "image/png", size: image.length },
      });
      const file = content["file"] as {
        url: string;
        key: { k: string; alg: string };
        iv: string;
        hashes: { sha256: string };
        v: string;
      };
      expect(file).toMatchObject({ v: "v2", key: { alg: "A256CTR" } });
      // What the homeserver holds is ciphertext; the key in the event opens it.
      const ciphertext = await download(file.url);
      expect(ciphertext.equals(image)).toBe(false);
      expect(createHash("sha256").update(ciphertext).digest("base64").replace(/=+$/, "")).toBe(
        file.hashes.sha256.replace(/=+$/, ""),
      );
      const decipher = createDecipheriv(
        "aes-256-ctr",
        Buffer.from(file.key.k, "base64url"),
        Buffer.from(file.iv, "base64"),
      );
      const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      expect(plaintext.equals(image)).toBe(true);
    } finally {
      await files.close();
    }
  });
});
