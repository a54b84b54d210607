/**
 * Stashcat benchmark: from a Stashcat client's send (encryption included) to the normalised event on the bus
 * (through the Stashcat-compatible server and the bridge), next to the server's own round trip, in the same
 * run: one officer's send to another officer's push `message_sync`, decryption included.
 *
 * Both are measured in one channel of which the bridge's account and both officers are members, so the
 * server does the same work (store, push to every member's sockets) whichever delivery is timed.
 */
import { randomUUID } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { decryptText, unlockPrivateKey, unwrapChatKey } from "../bridges/stashcat/crypto.js";
import type { RunningStashcatBridge } from "../bridges/stashcat/StashcatBridge.js";
import { parseMessage, StashcatClient, type ChatRef } from "../bridges/stashcat/StashcatClient.js";
import { StashcatPush } from "../bridges/stashcat/StashcatPush.js";
import { JetStreamBus } from "../gateway/platform/bus/JetStreamBus.js";
import { subjects } from "../schemas/contract/subjects.js";
import { createLogger } from "../gateway/platform/log.js";
import {
  einsatz,
  linkChannel,
  MEYER,
  Officer,
  SCHULZ,
  seedUser,
  startStashcatBridge,
  startStashcatScene,
  type StashcatScene,
} from "../test/helpers/stashcatScenes.js";
import type { StashcatServer } from "../test/harness/servers/stashcat/StashcatServer.js";
import { measure, type RunFigures } from "./measure.js";

const log = createLogger("warn", "fedgate-bench");
/**
 * Sends in flight at once, the same for both runs: `message/send` resolves with the server's answer, so a
 * client that waits for each one measures the round trip rather than the server and the bridge.
 */
export const STASHCAT_IN_FLIGHT = 8;

type Listeners = Set<(text: string) => void>;

/** Resolves at the first text `listeners` hear; fails after 20 s. */
function firstArrival(listeners: Listeners, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const heard = (): void => {
      clearTimeout(timer);
      listeners.delete(heard);
      resolve();
    };
    const timer = setTimeout(() => {
      listeners.delete(heard);
      reject(new Error(`Stashcat benchmark: the warm-up message did not arrive ${path} within 20 s`));
    }, 20_000);
    listeners.add(heard);
  });
}

/**
 * Follows `chat` as the seed's user `userId` does on a device of their own: `onText` is told each message
 * the server pushes there (`message_sync`), decrypted. Its client is made here rather than by Officer: the
 * push channel needs the device id it logged in with.
 */
export async function followChat(
  server: StashcatServer,
  userId: number,
  chat: ChatRef,
  onText: (text: string) => void,
): Promise<StashcatPush> {
  const user = seedUser(server.seed, userId);
  const deviceId = `bench${randomUUID().replace(/-/g, "")}`;
  const client = await StashcatClient.connect({
    apiUrl: server.apiUrl,
    email: user.email,
    password: user.password,
    deviceId,
    appName: "fedgate-bench",
    log,
  });
  const privateKey = unlockPrivateKey(await client.lockedPrivateKey(), user.encryptionPassword);
  const key = unwrapChatKey((await client.chatKeyField(chat)) ?? "", privateKey);
  return StashcatPush.connect({
    pushUrl: server.pushUrl,
    deviceId,
    client,
    log,
    onMessage: (raw) => {
      const message = parseMessage(raw);
      onText(message.encrypted ? decryptText(message.text, message.iv ?? "", key) : message.text);
    },
    onReady: () => undefined,
  });
}

export async function runStashcatBenchmark(options: {
  events: number;
  perSecond: number;
}): Promise<RunFigures[]> {
  let scene: StashcatScene | undefined;
  let bus: JetStreamBus | undefined;
  let nc: NatsConnection | undefined;
  let bridge: RunningStashcatBridge | undefined;
  let push: StashcatPush | undefined;
  try {
    scene = await startStashcatScene();
    if (scene === undefined)
      throw new Error("Stashcat benchmark: needs nats-server (see the SKIPPED line above)");
    bus = await JetStreamBus.connect({ servers: scene.nats.url, log });
    await bus.ensureTopology();
    // Linked before the bridge starts, which then bridges the channel from its first push on.
    await linkChannel(bus, "bench", einsatz);
    bridge = await startStashcatBridge(bus, scene, log);
    nc = await connect({ servers: scene.nats.url });

    const meyer = await Officer.login(scene, MEYER, log);
    const pushed: Listeners = new Set();
    push = await followChat(scene.server, SCHULZ, einsatz, (text) => {
      for (const listener of pushed) listener(text);
    });
    const onBus: Listeners = new Set();
    nc.subscribe(subjects.inboundAll, {
      callback: (_error, message) => {
        const body = (JSON.parse(message.string()) as { content?: { body?: string } }).content?.body;
        if (body !== undefined) for (const listener of onBus) listener(body);
      },
    });

    // One message through both paths first, so that neither run pays for a first time: Meyer's chat key,
    // the bridge's catch-up of the channel and its key.
    await Promise.all([
      firstArrival(pushed, "by push"),
      firstArrival(onBus, "on the bus"),
      meyer.say(einsatz, "bench warm-up"),
    ]);

    const send = async (text: string): Promise<void> => {
      await meyer.say(einsatz, text);
    };
    // The same sender, channel and pace for both runs: only where a message's arrival is seen differs.
    const run = (name: string, listeners: Listeners): Promise<RunFigures> =>
      measure(name, send, options.events, options.perSecond, (listener) => listeners.add(listener), {
        inFlight: STASHCAT_IN_FLIGHT,
      });
    return [
      await run("client to client through the server", pushed),
      await run("client to bus through the bridge", onBus),
    ];
  } finally {
    // Each step on its own, so that one failing to stop leaves no server running behind it.
    const steps = [
      () => bridge?.stop(),
      () => push?.stop(),
      () => nc?.close(),
      () => bus?.close(),
      () => scene?.stop(),
    ];
    for (const step of steps)
      await Promise.resolve()
        .then(step)
        .catch((error: unknown) => process.stderr.write(`bench: Stashcat clean-up: ${String(error)}\n`));
  }
}
