/**
 * Nothing lost, nothing doubled: the push channel dropped in the middle of a conversation, the bridge
 * restarted while officers keep writing, and a session key that expired.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import { JetStreamBus } from "../../../gateway/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/log.js";
import type { StashcatBridge } from "../../../bridges/stashcat/StashcatBridge.js";
import { bodiesStartingWith, eventually } from "../../helpers/fixtures.js";
import { deliverFromWeber } from "../../helpers/matrixScenes.js";
import {
  einsatz,
  linkChannel,
  MEYER,
  Officer,
  SCHULZ,
  startStashcatBridge,
  startStashcatScene,
  stashcatTarget,
} from "../../helpers/stashcatScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const logLines: string[] = [];
const log = createLogger("info", "test", {
  write: (line: string) => {
    logLines.push(line);
  },
});
const scene = await startStashcatScene();

describe.skipIf(scene === undefined)("Stashcat bridge - restarts and reconnections", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: StashcatBridge | undefined;
  let meyer: Officer;
  let schulz: Officer;

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await JetStreamBus.connect({ servers: scene.nats.url, log });
    await bus.ensureTopology();
    await collectInbound(bus, inbound);
    await linkChannel(bus, "einsatz", einsatz);
    bridge = await startStashcatBridge(bus, scene, log);
    // Officers log elsewhere: the bridge's log lines are what the tests count.
    meyer = await Officer.login(scene, MEYER, createLogger("silent"));
    schulz = await Officer.login(scene, SCHULZ, createLogger("silent"));
  });

  afterAll(async () => {
    try {
      await bridge?.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  function bridged(prefix: string): string[] {
    return bodiesStartingWith(inbound, prefix);
  }

  async function inChannel(prefix: string): Promise<string[]> {
    return (await schulz.read(einsatz)).map((m) => m.plain).filter((t) => t.includes(prefix));
  }

  it("Stashcat bridge - the push channel dropped mid-conversation: each message bridged once, in order", async () => {
    if (scene === undefined) return;
    await meyer.say(einsatz, "vorher 1");
    await eventually(() => (bridged("vorher").length === 1 ? true : undefined), 20_000);
    scene.server.dropPushConnections();
    await meyer.say(einsatz, "während 1");
    await meyer.say(einsatz, "während 2");
    await eventually(
      () => (bridged("während").length >= 2 ? true : undefined),
      30_000,
      "after the reconnection",
    );
    await meyer.say(einsatz, "nachher 1");
    await eventually(() => (bridged("nachher").length === 1 ? true : undefined), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(bridged("vorher")).toEqual(["vorher 1"]);
    expect(bridged("während")).toEqual(["während 1", "während 2"]);
    expect(bridged("nachher")).toEqual(["nachher 1"]);
  });

  it("Stashcat bridge - the bridge restarted while officers write: nothing lost, nothing doubled, both ways", async () => {
    if (scene === undefined) return;
    await bridge?.stop();
    bridge = undefined;
    await meyer.say(einsatz, "offline 1");
    await meyer.say(einsatz, "offline 2");
    await meyer.say(einsatz, "offline 3");
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "gepuffert 1" },
    });
    bridge = await startStashcatBridge(bus, scene, log);
    await eventually(
      () => (bridged("offline").length >= 3 ? true : undefined),
      30_000,
      "the missed messages",
    );
    await eventually(async () => ((await inChannel("gepuffert")).length === 1 ? true : undefined), 20_000);
    await meyer.say(einsatz, "online 1");
    await eventually(() => (bridged("online").length === 1 ? true : undefined), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(bridged("offline")).toEqual(["offline 1", "offline 2", "offline 3"]);
    expect(await inChannel("gepuffert")).toHaveLength(1);
  });

  it("Stashcat bridge - NATS away while an officer writes: the message waits for it, and is bridged once", async () => {
    if (scene === undefined) return;
    await scene.nats.restart(async () => {
      await meyer.say(einsatz, "ohne NATS 1");
      // The bridge receives it by push and cannot publish it yet.
      await eventually(
        () => (logLines.some((l) => l.includes("not bridged yet; retrying")) ? true : undefined),
        20_000,
        "the bridge retrying",
      );
    });
    await meyer.say(einsatz, "mit NATS 1");
    await eventually(
      () => (bridged("mit NATS").length === 1 ? true : undefined),
      60_000,
      "after NATS is back",
    );
    await eventually(
      () => (bridged("ohne NATS").length === 1 ? true : undefined),
      60_000,
      "the waiting message",
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(bridged("ohne NATS")).toEqual(["ohne NATS 1"]);
    // In order: the waiting message before the next one.
    const order = inbound
      .map((e) => e.content?.body)
      .filter((b) => b === "ohne NATS 1" || b === "mit NATS 1");
    expect(order).toEqual(["ohne NATS 1", "mit NATS 1"]);
  });

  it("Stashcat bridge - an expired session key costs one login, and the bridge goes on", async () => {
    if (scene === undefined) return;
    const loginsBefore = logLines.filter((l) => l.includes("Stashcat session expired")).length;
    scene.server.expireClientKeys();
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "nach Ablauf 1" },
    });
    await eventually(
      async () => ((await inChannel("nach Ablauf 1")).length === 1 ? true : undefined),
      20_000,
    );
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "nach Ablauf 2" },
    });
    await eventually(
      async () => ((await inChannel("nach Ablauf 2")).length === 1 ? true : undefined),
      20_000,
    );
    expect(logLines.filter((l) => l.includes("Stashcat session expired")).length - loginsBefore).toBe(1);
  });
});
