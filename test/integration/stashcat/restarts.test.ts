/**
 * Nothing lost, nothing doubled: the push channel dropped in the middle of a conversation, the bridge
 * restarted while officers keep writing, and a session key that expired.
 */
import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Delivery, NormalisedEvent } from "../../../schemas/types.js";
import { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { MessageMap } from "../../../gateway/platform/stores/MessageMap.js";
import { encryptText } from "../../../bridges/stashcat/crypto.js";
import type { RunningStashcatBridge } from "../../../bridges/stashcat/StashcatBridge.js";
import { bodiesStartingWith, eventually } from "../../helpers/fixtures.js";
import { bpol, deliverFromWeber, weber, weberXmppRoom } from "../../helpers/matrixScenes.js";
import {
  einsatz,
  linkChannel,
  MEYER,
  Officer,
  SCHULZ,
  SERVICE_ACCOUNT,
  startStashcatBridge,
  startStashcatScene,
  stashcatTarget,
} from "../../helpers/stashcatScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";
import { startTelemetry, stopTelemetry } from "../../../gateway/platform/telemetry.js";
import { sample, scrapeThisProcess } from "../../helpers/metricsText.js";

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
  let bridge: RunningStashcatBridge | undefined;
  let meyer: Officer;
  let schulz: Officer;
  let meyerKey: Buffer;

  beforeAll(async () => {
    if (scene === undefined) return;
    startTelemetry({ serviceName: "fedgate-bridge-stashcat" });
    bus = await JetStreamBus.connect({ servers: scene.nats.url, log });
    await bus.ensureTopology();
    await collectInbound(bus, inbound);
    await linkChannel(bus, "einsatz", einsatz);
    bridge = await startStashcatBridge(bus, scene, log);
    // Officers log elsewhere: the bridge's log lines are what the tests count.
    meyer = await Officer.login(scene, MEYER, createLogger("silent"));
    schulz = await Officer.login(scene, SCHULZ, createLogger("silent"));
    meyerKey = await meyer.chatKey(einsatz);
  });

  afterAll(async () => {
    try {
      await bridge?.stop();
      await bus.close();
    } finally {
      await scene?.stop();
      await stopTelemetry();
    }
  });

  /** Catch-ups of this process with `outcome`, and the messages they read back, as /metrics says. */
  async function catchUps(outcome: string): Promise<{ runs: number; read: number }> {
    const text = await scrapeThisProcess();
    return {
      runs: sample(text, "fedgate_catchup_runs_total", { network: "stashcat", outcome }),
      read: sample(text, "fedgate_catchup_messages_total", { network: "stashcat" }),
    };
  }

  function bridged(prefix: string): string[] {
    return bodiesStartingWith(inbound, prefix);
  }

  async function inChannel(prefix: string): Promise<string[]> {
    return (await schulz.read(einsatz)).map((m) => m.plain).filter((t) => t.includes(prefix));
  }

  /** Meyer writes through the server at once, without a request: in an exact instant. */
  function write(text: string): void {
    scene?.server.writeAs(MEYER, einsatz, { ...encryptText(text, meyerKey), encrypted: true });
  }

  /** Meyer writes `prefix 1` … `prefix count` at once; returns their texts. */
  function writeNumbered(prefix: string, count: number): string[] {
    const texts = Array.from({ length: count }, (_, i) => `${prefix} ${String(i + 1)}`);
    for (const text of texts) write(text);
    return texts;
  }

  /** Runs `act` once, in the instant the bridge's push socket is logged in again. */
  function whenBridgeIsBack(act: () => void): void {
    const stop = scene?.server.onPushLogin((userId) => {
      if (userId !== SERVICE_ACCOUNT) return;
      stop?.();
      act();
    });
  }

  /** Waits until as many as `texts` are on the bus, then expects each once, in the order written. */
  async function expectBridgedInOrder(prefix: string, texts: string[]): Promise<void> {
    // On a timeout the comparison below shows what is missing.
    await eventually(() => (bridged(prefix).length >= texts.length ? true : undefined), 30_000).catch(
      () => undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(bridged(prefix)).toEqual(texts);
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

  it("Stashcat bridge - a message pushed the instant the push channel is back does not skip those written while it was down", async () => {
    if (scene === undefined) return;
    // The bridge is at the newest message: what follows is all new.
    const before = writeNumbered("Rückkehr vorher", 1);
    await expectBridgedInOrder("Rückkehr vorher", before);
    whenBridgeIsBack(() => write("Rückkehr B 1"));
    scene.server.dropPushConnections();
    const away = writeNumbered("Rückkehr A", 10);
    // Those written while it was down come before the one pushed on its return.
    await expectBridgedInOrder("Rückkehr ", [...before, ...away, "Rückkehr B 1"]);
  });

  it("Stashcat bridge - the push channel cut twice, the second time just after it came back: each message once, in order", async () => {
    if (scene === undefined) return;
    whenBridgeIsBack(() => {
      // Back, a message pushed, and cut again at once, with more written while it is down.
      write("Doppelt B 1");
      scene.server.dropPushConnections();
      writeNumbered("Doppelt C", 5);
      whenBridgeIsBack(() => write("Doppelt D 1"));
    });
    scene.server.dropPushConnections();
    const away = writeNumbered("Doppelt A", 5);
    await expectBridgedInOrder("Doppelt ", [
      ...away,
      "Doppelt B 1",
      ...[1, 2, 3, 4, 5].map((n) => `Doppelt C ${String(n)}`),
      "Doppelt D 1",
    ]);
  });

  it("Stashcat bridge - the push channel cut while a catch-up is still reading: each message once, in order", async () => {
    if (scene === undefined) return;
    // Every page arrives 1.5 s after the server made it: the first catch-up is still under way when the
    // connection is cut again.
    scene.server.slowDown("message/content", 1500);
    try {
      whenBridgeIsBack(() => {
        setTimeout(() => {
          scene.server.dropPushConnections();
          writeNumbered("Langsam C", 3);
          whenBridgeIsBack(() => write("Langsam D 1"));
        }, 300);
      });
      scene.server.dropPushConnections();
      const away = writeNumbered("Langsam A", 3);
      await expectBridgedInOrder("Langsam ", [
        ...away,
        "Langsam C 1",
        "Langsam C 2",
        "Langsam C 3",
        "Langsam D 1",
      ]);
    } finally {
      scene.server.slowDown("message/content", 0);
    }
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
    const before = await catchUps("done");
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
    const after = await catchUps("done");
    expect(after.runs - before.runs).toBeGreaterThanOrEqual(1);
    expect(after.read - before.read).toBeGreaterThanOrEqual(3);
  });

  it("Stashcat bridge - killed between recording a message's ids and publishing it: the next start publishes it", async () => {
    if (scene === undefined) return;
    await bridge?.stop();
    bridge = undefined;
    const text = "halb gesendet 1";
    const id = scene.server.writeAs(MEYER, einsatz, { ...encryptText(text, meyerKey), encrypted: true });
    // What a kill -9 after the message map was written, before the event reached the bus, leaves behind.
    const eventId = createHash("sha256")
      .update(["stashcat", "ni", String(id)].join("\0"))
      .digest("hex")
      .slice(0, 32);
    const map = new MessageMap(await bus.keyValue(buckets.messages));
    await map.record(
      eventId,
      { network: "stashcat", instance: "ni", conversation: "channel:1001" },
      String(id),
    );
    bridge = await startStashcatBridge(bus, scene, log);
    await expectBridgedInOrder("halb gesendet", [text]);
    expect(inbound.find((e) => e.content?.body === text)?.id).toBe(eventId);
  });

  it("Stashcat bridge - a chat seen for the first time: what is pushed while its starting point is read is not taken for history, even across a stop", async () => {
    if (scene === undefined) return;
    await bridge?.stop();
    // The chat as if never bridged: its catch-up starts at what is newest.
    await (await bus.keyValue("fedgate_stashcat_state")).delete("last.channel.1001");
    scene.server.slowDown("message/content", 1500);
    try {
      whenBridgeIsBack(() => write("erster Blick 1"));
      bridge = await startStashcatBridge(bus, scene, log);
      // Stopped while the first catch-up still waits for the newest message: the pushed one is not handled.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await bridge.stop();
    } finally {
      scene.server.slowDown("message/content", 0);
    }
    bridge = await startStashcatBridge(bus, scene, log);
    await expectBridgedInOrder("erster Blick", ["erster Blick 1"]);
  });

  it("Stashcat bridge - a delivery handled again, as after a crash before its ack, is not posted twice", async () => {
    if (scene === undefined) return;
    const event: NormalisedEvent = {
      specVersion: "1",
      id: randomUUID(),
      type: "message.created",
      source: { network: "xmpp", instance: "bpol", conversation: weberXmppRoom.conversation },
      sender: weber,
      timestamp: new Date().toISOString(),
      content: { body: "nur einmal 1" },
    };
    const delivery: Delivery = {
      specVersion: "1",
      id: `${event.id}.m`,
      event,
      target: stashcatTarget(),
      senderAgency: bpol,
    };
    // The stream holds it twice: the bridge handles it a second time, as it would had it died before the ack.
    for (const copy of ["first", "again"])
      await bus.publish(subjects.outbound("stashcat", "ni"), encodeJson(delivery), {
        msgId: `${delivery.id}.${copy}`,
      });
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "nur einmal 2" },
    });
    await eventually(async () => ((await inChannel("nur einmal 2")).length === 1 ? true : undefined), 20_000);
    expect(await inChannel("nur einmal")).toEqual([
      "**Kommissarin Weber (Bundespolizei):** nur einmal 1",
      "**Kommissarin Weber (Bundespolizei):** nur einmal 2",
    ]);
  });

  it("Stashcat bridge - a catch-up refused for good leaves the chat behind: pushes are bridged but do not move its point, and the next catch-up brings what it missed", async () => {
    if (scene === undefined) return;
    scene.server.refuse("message/content", "no_permission");
    const failedBefore = (await catchUps("failed")).runs;
    try {
      scene.server.dropPushConnections();
      const missed = writeNumbered("Zurückgeblieben A", 3);
      await eventually(
        () => (logLines.some((l) => l.includes("Stashcat catch-up failed")) ? true : undefined),
        20_000,
        "the catch-up refused",
      );
      expect((await catchUps("failed")).runs).toBe(failedBefore + 1);
      // The push channel works: a new message is bridged, though what was missed is not yet.
      write("Zurückgeblieben B 1");
      await expectBridgedInOrder("Zurückgeblieben B", ["Zurückgeblieben B 1"]);
      expect(bridged("Zurückgeblieben A")).toEqual([]);
      scene.server.refuse("message/content", undefined);
      // The next reconnection reads the chat from where it stood.
      scene.server.dropPushConnections();
      await expectBridgedInOrder("Zurückgeblieben A", missed);
    } finally {
      scene.server.refuse("message/content", undefined);
    }
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

  it("Stashcat bridge - NATS away while the push channel is cut and officers write: the catch-up waits for NATS, each message once, in order", async () => {
    if (scene === undefined) return;
    const logins = (): number => logLines.filter((l) => l.includes("Stashcat push authenticated")).length;
    let away: string[] = [];
    await scene.nats.restart(async () => {
      const before = logins();
      scene.server.dropPushConnections();
      away = writeNumbered("ohne Bus", 5);
      // The push channel is back while NATS is not: the catch-up cannot even read where it stands.
      await eventually(() => (logins() > before ? true : undefined), 20_000, "the push channel back");
      await new Promise((resolve) => setTimeout(resolve, 1500));
    });
    // Once NATS is back, a new message comes by push.
    write("mit Bus 1");
    await expectBridgedInOrder("ohne Bus", away);
    await expectBridgedInOrder("mit Bus", ["mit Bus 1"]);
    const order = inbound
      .map((e) => e.content?.body ?? "")
      .filter((b) => b.startsWith("ohne Bus") || b.startsWith("mit Bus"));
    expect(order).toEqual([...away, "mit Bus 1"]);
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
