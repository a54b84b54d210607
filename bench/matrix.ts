/**
 * Matrix benchmark: from a Matrix client's send to the normalised event on the bus (through Synapse and the
 * bridge), next to plain client-to-client delivery through the same Synapse, in the same run; and the same
 * from an encrypting client (matrix-js-sdk with its Rust crypto, as Element) in an encrypted room, which the
 * bridge decrypts with its bot's device (end-to-bridge encryption, its store on disk as deployed).
 *
 * The plain deliveries are measured in one room that the receiving client and the bridge's bot have both
 * joined, so Synapse does the same work (persist, push to the bridge, wake the receiver's /sync) whichever
 * delivery is timed. One bridge, encryption enabled, serves both rooms.
 */
import "fake-indexeddb/auto";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createClient } from "matrix-js-sdk";
import { logger as jsSdkLogger } from "matrix-js-sdk/lib/logger.js";
import { connect } from "@nats-io/transport-node";
import { subjects } from "../schemas/contract/subjects.js";
import { createLogger } from "../gateway/platform/log.js";
import {
  connectBus,
  linkTchapRoom,
  type MatrixScene,
  Official,
  startMatrixBridge,
  startMatrixScene,
} from "../test/helpers/matrixScenes.js";
import { type Cleanups, undo } from "./cleanups.js";
import { measure, type RunFigures } from "./measure.js";

const log = createLogger("warn", "fedgate-bench");
/** Sends in flight at once, the same for both runs: a client that waits for each answer measures latency, not Synapse. */
export const IN_FLIGHT = 8;

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 20_000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`Matrix benchmark: ${what} within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The Matrix scene (nats-server and Synapse, the bridge registered), its undoing added to `cleanups`. */
export async function benchMatrixScene(what: string, cleanups: Cleanups): Promise<MatrixScene> {
  const scene = await startMatrixScene();
  if (scene === undefined)
    throw new Error(`${what}: needs nats-server and Synapse (see the SKIPPED line above)`);
  cleanups.push(() => scene.stop());
  // Outside vitest nothing removes the scene's scratch folder (the registration file): the bench does.
  cleanups.push(() => rm(dirname(scene.config.registrationFile), { recursive: true, force: true }));
  return scene;
}

/**
 * Two officials on the scene's Synapse, each over kept-alive connections of their own: the sender creates a
 * room, the receiver joins it, and the bridge's bot is invited (it joins on the invite, or when its bridge
 * starts). What is to be closed is added to `cleanups`.
 */
export async function officialsInRoom(
  scene: MatrixScene,
  cleanups: Cleanups,
): Promise<{ sender: Official; receiver: Official; room: string }> {
  const sender = await Official.register(scene.synapse, "sender", undefined, { keepAlive: true });
  cleanups.push(() => sender.close());
  const receiver = await Official.register(scene.synapse, "receiver", undefined, { keepAlive: true });
  cleanups.push(() => receiver.close());
  const room = await sender.createRoom();
  for (const invitee of [receiver.userId, scene.bot]) await sender.invite(room, invitee);
  await receiver.join(room);
  return { sender, receiver, room };
}

export async function runMatrixBenchmark(options: {
  events: number;
  perSecond: number;
}): Promise<RunFigures[]> {
  const cleanups: Cleanups = [];
  try {
    const scene = await benchMatrixScene("Matrix benchmark", cleanups);
    const bus = await connectBus(scene, log);
    cleanups.push(() => bus.close());
    const nc = await connect({ servers: scene.nats.url });
    cleanups.push(() => nc.close());
    const storeDir = await mkdtemp(join(tmpdir(), "fedgate-bench-matrix-store-"));
    cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
    const storeKeyFile = join(storeDir, "store.key");
    await writeFile(storeKeyFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
    const bridge = await startMatrixBridge(bus, scene, log, {
      encryption: { enabled: true, storeFile: join(storeDir, "crypto.store"), storeKeyFile },
    });
    cleanups.push(() => bridge.stop());

    const { sender, receiver, room } = await officialsInRoom(scene, cleanups);
    // Invited before the room is linked, the bot joins on the invite; linked first, it would try to join
    // before it may and log a warning.
    await until("the bot did not join the room", async () =>
      (await sender.joinedMembers(room)).includes(scene.bot),
    );
    await linkTchapRoom(bus, "bench", room);

    const onBus = new Set<(body: string) => void>();
    const subscription = nc.subscribe(subjects.inboundAll, {
      callback: (_error, message) => {
        const body = (JSON.parse(message.string()) as { content?: { body?: string } }).content?.body;
        if (body !== undefined) for (const listener of onBus) listener(body);
      },
    });
    cleanups.push(() => {
      subscription.unsubscribe();
    });
    const inSync = new Set<(body: string) => void>();
    const following = await receiver.follow(room, (body) => {
      for (const listener of inSync) listener(body);
    });
    cleanups.push(() => following.stop());

    await new Promise((r) => setTimeout(r, 500)); // the bridge sees the new link
    // One message through both paths first: the bridge has seen the link, and neither run pays for a
    // first request (the sender's display name, the sync's first wake-up).
    let warm = 0;
    const warmUp = (): void => {
      warm++;
    };
    onBus.add(warmUp);
    inSync.add(warmUp);
    await sender.say(room, "bench warm-up");
    await until("the warm-up message did not arrive", () => Promise.resolve(warm >= 2));
    onBus.delete(warmUp);
    inSync.delete(warmUp);

    const send = async (text: string): Promise<void> => {
      await sender.say(room, text);
    };
    // The same sender, room and pace for both runs: only where a message's arrival is seen differs.
    const figures: RunFigures[] = [];
    for (const [name, listeners] of [
      ["client to client through Synapse", inSync],
      ["client to bus through the bridge", onBus],
    ] as const)
      figures.push(
        await measure(name, send, options.events, options.perSecond, (listener) => listeners.add(listener), {
          inFlight: IN_FLIGHT,
        }),
      );

    // The encrypted room: its sender encrypts each message (Megolm, the room key rotated as the room's
    // settings say) and shares the room keys with the bot's device; the bridge decrypts before publishing.
    const sendEncrypted = await encryptingSender(scene, cleanups);
    const encrypted = await sendEncrypted.createEncryptedRoom(scene.bot);
    await linkTchapRoom(bus, "bench-encrypted", encrypted);
    await new Promise((r) => setTimeout(r, 500)); // the bridge sees the new link
    let warmEncrypted = false;
    const warmUpEncrypted = (body: string): void => {
      if (body === "bench encrypted warm-up") warmEncrypted = true;
    };
    onBus.add(warmUpEncrypted);
    await sendEncrypted.say(encrypted, "bench encrypted warm-up");
    await until("the encrypted warm-up message did not arrive", () => Promise.resolve(warmEncrypted));
    onBus.delete(warmUpEncrypted);
    figures.push(
      await measure(
        "encrypted: client to bus",
        (text) => sendEncrypted.say(encrypted, text),
        options.events,
        options.perSecond,
        (listener) => onBus.add(listener),
        { inFlight: IN_FLIGHT },
      ),
    );
    return figures;
  } finally {
    await undo(cleanups, "Matrix");
  }
}

/**
 * An official's client that encrypts, as Element does (matrix-js-sdk with its Rust crypto, keys in memory), on
 * the scene's Synapse; its stopping is added to `cleanups`. Its logs are silenced: it logs every sync and key
 * request, and its Rust crypto traces at debug level to the console.
 */
async function encryptingSender(
  scene: MatrixScene,
  cleanups: Cleanups,
): Promise<{
  createEncryptedRoom(bot: string): Promise<string>;
  say(room: string, text: string): Promise<void>;
}> {
  (jsSdkLogger as unknown as { setLevel(level: string): void }).setLevel("silent");
  const { debug, info } = console;
  console.debug = () => undefined;
  console.info = () => undefined;
  cleanups.push(() => {
    console.debug = debug;
    console.info = info;
    return Promise.resolve();
  });
  const user = await scene.synapse.registerUser("encrypting-sender", randomBytes(12).toString("hex"));
  const client = createClient({ baseUrl: scene.synapse.baseUrl, ...user });
  await client.initRustCrypto({ useIndexedDB: false });
  await client.startClient({ initialSyncLimit: 1 });
  cleanups.push(() => {
    client.stopClient();
    return Promise.resolve();
  });
  await until("the encrypting client's first sync", () => Promise.resolve(client.isInitialSyncComplete()));
  return {
    async createEncryptedRoom(bot) {
      const { room_id: room } = await client.createRoom({
        name: "bench (encrypted)",
        invite: [bot],
        initial_state: [
          { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
        ],
      });
      await until("the bot did not join the encrypted room", () =>
        Promise.resolve(client.getRoom(room)?.getMember(bot)?.membership === "join"),
      );
      return room;
    },
    async say(room, text) {
      await client.sendTextMessage(room, text);
    },
  };
}
