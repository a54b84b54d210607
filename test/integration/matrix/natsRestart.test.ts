/**
 * Nothing lost while the bus is away: the Matrix bridge answers a transaction only once its events are on the
 * bus, so while NATS is down the transaction fails (500) and Synapse sends it again.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  connectBus,
  linkedRoom,
  Official,
  putTransaction,
  startMatrixBridge,
  startMatrixScene,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const logLines: string[] = [];
const log = createLogger("info", "test", {
  write: (line: string) => {
    logLines.push(line);
  },
});
const scene = await startMatrixScene();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** "<prefix> 001" … "<prefix> <count>": a stream whose order can be checked. */
function numbered(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} ${String(i + 1).padStart(3, "0")}`);
}

const failedTransactions = (): number =>
  logLines.filter((l) => l.includes("Matrix AS transaction failed; the homeserver will retry it")).length;

describe.skipIf(scene === undefined)("Matrix bridge - NATS restarted", () => {
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge | undefined;
  let claire: Official;
  let room = "";

  /**
   * The messages the bus stored whose body starts with `prefix`, read from the stream's start on a
   * connection of its own, opened after the fault: how a reader recovers is not what is tested here.
   */
  async function storedOnBus(prefix: string, count: number, timeoutMs: number): Promise<string[]> {
    const inbound: NormalisedEvent[] = [];
    const matching = (): string[] =>
      inbound
        .filter((e) => e.type === "message.created" && e.content?.body?.startsWith(prefix) === true)
        .map((e) => e.content?.body ?? "");
    const reader = await JetStreamBus.connect({
      servers: scene?.nats.url ?? "",
      log: createLogger("silent"),
    });
    try {
      await collectInbound(reader, inbound);
      await eventually(
        () => (matching().length >= count ? true : undefined),
        timeoutMs,
        `${count} messages "${prefix} …" on the bus`,
      ).catch(() => undefined);
      // Anything doubled arrives with the rest.
      await sleep(1000);
      return matching();
    } finally {
      await reader.close();
    }
  }

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    bridge = await startMatrixBridge(bus, scene, log);
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
    room = await linkedRoom(scene, bus, claire, "einsatz");
  });

  afterAll(async () => {
    try {
      await bridge?.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  it("Matrix bridge - NATS away: a transaction fails (500) rather than being acknowledged, and the same one succeeds, once, when NATS is back", async () => {
    if (scene === undefined || bridge === undefined) return;
    const url = bridge.url;
    const event = {
      type: "m.room.message",
      room_id: room,
      sender: claire.userId,
      event_id: `$${randomUUID()}`,
      origin_server_ts: Date.now(),
      content: { msgtype: "m.text", body: "ohne NATS" },
    };
    const txnId = `nats-away-${randomUUID()}`;
    await scene.nats.restart(async () => {
      expect(await putTransaction(scene, url, [event], txnId)).toBe(500);
    }, "SIGKILL");
    await eventually(
      async () => ((await putTransaction(scene, url, [event], txnId)) === 200 ? true : undefined),
      30_000,
      "the transaction taken",
    );
    expect(await putTransaction(scene, url, [event], txnId)).toBe(200);
    expect(await storedOnBus("ohne NATS", 1, 30_000)).toEqual(["ohne NATS"]);
  }, 120_000);

  it("Matrix bridge - nats-server killed (SIGKILL) and restarted a second later during a paced stream: Synapse sends the failed transactions again, and every message is on the bus once, in order", async () => {
    if (scene === undefined) return;
    const failedBefore = failedTransactions();
    const bodies = numbered("strom", 60);
    let faulting: Promise<void> | undefined;
    for (const [i, body] of bodies.entries()) {
      await claire.say(room, body);
      // Right after a message, while Synapse is handing it to the bridge.
      if (i + 1 === 20) faulting = scene.nats.restart(() => sleep(1000), "SIGKILL");
      await sleep(100);
    }
    await faulting;
    expect(await storedOnBus("strom", bodies.length, 90_000)).toEqual(bodies);
    // The bridge refused what it could not store, and Synapse sent it again.
    expect(failedTransactions()).toBeGreaterThan(failedBefore);
  }, 180_000);
});
