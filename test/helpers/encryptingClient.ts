/**
 * The official's side of an encrypted Tchap room, as an independent client: matrix-js-sdk with its Rust crypto
 * (keys in memory; fake-indexeddb stands in for the browser's IndexedDB that other parts of the SDK want).
 */
import "fake-indexeddb/auto";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createClient, type MatrixClient } from "matrix-js-sdk";
import { logger as jsSdkLogger } from "matrix-js-sdk/lib/logger.js";
import type { LocalSynapse } from "../harness/servers/matrix/LocalSynapse.js";
import { eventually } from "./fixtures.js";
import { scratchDir } from "./scratchDir.js";

// Its own logging would bury the tests' output.
(jsSdkLogger as unknown as { setLevel(level: string): void }).setLevel("silent");

/** The `m.room.encryption` state a room is created with to be encrypted from its first event. */
export const MEGOLM_ROOM_STATE = {
  type: "m.room.encryption",
  state_key: "",
  content: { algorithm: "m.megolm.v1.aes-sha2" },
} as const;

/**
 * A client logged in as `login` (one device), its keys uploaded and its first sync done. Call stopClient()
 * when done.
 */
export async function encryptingClient(login: {
  baseUrl: string;
  userId: string;
  accessToken: string;
  deviceId?: string;
}): Promise<MatrixClient> {
  const client = createClient(login);
  await client.initRustCrypto({ useIndexedDB: false });
  await client.startClient({ initialSyncLimit: 10 });
  await eventually(() => (client.isInitialSyncComplete() ? true : undefined), 30_000, "the first sync");
  return client;
}

/** A room `client` creates encrypted from its start; resolves with its id. */
export async function createEncryptedRoom(client: MatrixClient, name: string): Promise<string> {
  const { room_id: room } = await client.createRoom({ name, initial_state: [MEGOLM_ROOM_STATE] });
  return room;
}

/** Invites the bridge's bot into `room` and resolves once `client` sees it joined (it joins at once). */
export async function inviteBot(client: MatrixClient, room: string, bot: string): Promise<void> {
  await client.invite(room, bot);
  await eventually(
    () => (client.getRoom(room)?.getMember(bot)?.membership === "join" ? true : undefined),
    20_000,
    "the bot in the room, as the official's client sees it",
  );
}

/** The bridge's encryption with its store kept on disk (a fresh store key): what a restart keeps. */
export interface KeptEncryption {
  enabled: true;
  storeFile: string;
  storeKeyFile: string;
}

/** KeptEncryption in a scratch folder of its own, named after `name`. */
export async function keptEncryption(name: string): Promise<KeptEncryption> {
  const dir = await scratchDir(name);
  const storeKeyFile = join(dir, "store.key");
  await writeFile(storeKeyFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
  return { enabled: true, storeFile: join(dir, "crypto.store"), storeKeyFile };
}

/**
 * An official registered on `synapse` with her encrypting client, in a room she created encrypted, linked
 * by `link` and with the bridge's bot `bot` in it.
 */
export async function officialInEncryptedRoom(
  synapse: Pick<LocalSynapse, "baseUrl" | "registerUser">,
  official: { user: string; password: string; roomName: string },
  link: (room: string) => Promise<void>,
  bot: string,
): Promise<{ client: MatrixClient; room: string }> {
  const login = await synapse.registerUser(official.user, official.password);
  const client = await encryptingClient({ baseUrl: synapse.baseUrl, ...login });
  const room = await createEncryptedRoom(client, official.roomName);
  await link(room);
  await inviteBot(client, room, bot);
  return { client, room };
}
