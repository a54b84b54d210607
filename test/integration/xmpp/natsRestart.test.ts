/**
 * Nothing lost while the bus is away: a component gets no redelivery from its server, so what the bridge
 * received waits in the bridge until the bus has stored it, or is read again from the room's archive.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { XmppBridgeConfig } from "../../../bridges/xmpp/config.types.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { runFedgate, type FedgateProcess } from "../../helpers/processes.js";
import { scratchDir } from "../../helpers/scratchDir.js";
import { NS } from "../../helpers/xmppNamespaces.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const logLines: string[] = [];
const log = createLogger("info", "test", {
  write: (line: string) => {
    logLines.push(line);
  },
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** "<prefix> 001" … "<prefix> <count>": a stream whose order can be checked. */
function numbered(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} ${String(i + 1).padStart(3, "0")}`);
}

/** The longest time between two consecutive events' conversions: how long bridging stood still. */
function longestPauseMs(events: NormalisedEvent[]): number {
  const times = events.map((e) => Date.parse(e.timestamp));
  return Math.max(0, ...times.slice(1).map((t, i) => t - (times[i] ?? t)));
}

describe.skipIf(nats === undefined || prosody === undefined)("XMPP bridge - NATS restarted", () => {
  let bus: JetStreamBus;
  let bridge: RunningXmppBridge | undefined;
  let officer: XmppClient & { errors: Error[] };
  let officerJid = "";
  let room = "";
  let puppet = "";
  const present = new Set<string>();
  const heard: Element[] = [];

  const say = (text: string): Promise<void> =>
    officer.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, text)));

  /** Starts the bridge (with `storeRetry` when given) and waits for its bot in the room. */
  async function startBridge(storeRetry?: Partial<XmppBridgeConfig["storeRetry"]>): Promise<void> {
    if (prosody === undefined) return;
    bridge = await scene.startXmppBridge(bus, prosody, log, {
      agency: "bpol",
      ...(storeRetry === undefined ? {} : { storeRetry }),
    });
    await scene.bridgeInRoom(present, room);
  }

  async function stopBridge(): Promise<void> {
    await bridge?.stop();
    bridge = undefined;
    await eventually(() => (present.has(`${room}/fedgate`) ? undefined : true), 10_000, "the bot gone");
  }

  /**
   * Sends `bodies` into the room, one every `paceMs`; `fault` starts (not awaited) right after the
   * `at`-th is sent, while the bridge is handling it.
   */
  async function stream(
    bodies: string[],
    paceMs: number,
    at: number,
    fault: () => Promise<void>,
  ): Promise<void> {
    let faulting: Promise<void> | undefined;
    for (const [i, body] of bodies.entries()) {
      await say(body);
      if (i + 1 === at) faulting = fault();
      await sleep(paceMs);
    }
    await faulting;
  }

  /**
   * The messages the bus stored whose body starts with `prefix`, read from the stream's start on a
   * connection of its own, opened after the fault: how a reader recovers is not what is tested here.
   */
  async function storedOnBus(prefix: string, count: number, timeoutMs: number): Promise<NormalisedEvent[]> {
    const inbound: NormalisedEvent[] = [];
    const matching = (): NormalisedEvent[] =>
      inbound.filter((e) => e.type === "message.created" && e.content?.body?.startsWith(prefix) === true);
    const reader = await JetStreamBus.connect({ servers: nats?.url ?? "", log: createLogger("silent") });
    try {
      await scene.collectInbound(reader, inbound);
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

  const bodiesOf = (events: NormalisedEvent[]): string[] => events.map((e) => e.content?.body ?? "");

  beforeAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    room = `lage@${prosody.mucDomain}`;
    bus = await scene.linkedBus(nats.url, log, room);
    officerJid = await scene.addWeber(prosody);
    officer = await scene.weberInRoom(prosody, room, { heard, present }, { available: true });
    puppet = scene.clairePuppet(prosody.componentDomain);
    // Claire speaks in the shared room first: that is how the officer meets her puppet.
    await startBridge();
    await scene.deliverFromClaire(bus, scene.roomTarget(room), {
      id: "claire-hello",
      type: "message.created",
      content: { body: "Bonjour à tous" },
    });
    await eventually(() => heard.find((m) => m.getChildText("body") === "Bonjour à tous"));
    await stopBridge();
  });

  // A test that failed half-way leaves no bridge connected to the next one.
  afterEach(async () => {
    if (bridge !== undefined) await stopBridge();
  });

  afterAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    try {
      await stopClient(officer);
      await bridge?.stop();
      await bus.close();
    } finally {
      await prosody.stop();
      await nats.stop();
    }
  });

  it("bus restart - nats-server killed (SIGKILL) and restarted a second later during a paced stream: every message on the bus once, in order", async () => {
    if (nats === undefined) return;
    await startBridge();
    const bodies = numbered("strom", 60);
    await stream(bodies, 100, 20, () => nats.restart(() => sleep(1000), "SIGKILL"));
    const stored = await storedOnBus("strom", bodies.length, 60_000);
    expect(bodiesOf(stored)).toEqual(bodies);
    console.error(
      `XMPP → bus, nats-server SIGKILL for 1 s: bridging stood still ${longestPauseMs(stored)} ms`,
    );
    await stopBridge();
  }, 120_000);

  it("bus restart - NATS away longer than the bridge holds messages: the room's archive gives them, once, in order", async () => {
    if (nats === undefined) return;
    await startBridge({ giveUpAfterMs: 1500, maxDelayMs: 500 });
    const bodies = numbered("archiv", 50);
    await stream(bodies, 100, 10, () => nats.restart(() => sleep(6000), "SIGKILL"));
    const stored = await storedOnBus("archiv", bodies.length, 60_000);
    expect(bodiesOf(stored)).toEqual(bodies);
    // The archive, not the retries, brought them: the bridge let go of the room's messages meanwhile.
    expect(logLines.some((l) => l.includes("read from the room's archive once it does"))).toBe(true);
    expect(logLines.some((l) => l.includes("bridged live again"))).toBe(true);
    console.error(
      `XMPP → bus, NATS away 6 s, from the archive: bridging stood still ${longestPauseMs(stored)} ms`,
    );
    await stopBridge();
  }, 120_000);

  it("bus restart - the bridge process killed (SIGKILL) while messages wait for NATS: the next one bridges them from the archive, once, in order", async () => {
    if (nats === undefined || prosody === undefined) return;
    const dir = await scratchDir("xmpp-crash");
    const config = join(dir, "config.yaml");
    await writeFile(
      config,
      stringify({
        nats: { url: nats.url },
        log: { level: "info" },
        bridges: {
          xmpp: { ...prosody.bridgeConfig(), agency: "bpol", status: { host: "127.0.0.1", port: 0 } },
        },
      }),
    );
    const first = runFedgate(["bridge", "xmpp", "--config", config]);
    let second: FedgateProcess | undefined;
    try {
      await first.waitFor("caught up with the room's archive", 60_000);
      await nats.restart(async () => {
        await say("abgestürzt 1");
        await say("abgestürzt 2");
        // Long enough for the bridge to have received them, shorter than a request to NATS waits.
        await sleep(2000);
        // The bridge dies holding them: it acknowledged them to no one, and moved no catch-up point past them.
        first.child.kill("SIGKILL");
        await first.exited;
      }, "SIGKILL");
      await say("abgestürzt 3");
      second = runFedgate(["bridge", "xmpp", "--config", config]);
      const stored = await storedOnBus("abgestürzt", 3, 60_000);
      expect(bodiesOf(stored)).toEqual(["abgestürzt 1", "abgestürzt 2", "abgestürzt 3"]);
    } finally {
      for (const bridgeProcess of [first, second]) {
        if (bridgeProcess === undefined || bridgeProcess.child.exitCode !== null) continue;
        bridgeProcess.child.kill("SIGTERM");
        await bridgeProcess.exited;
      }
    }
  }, 120_000);

  it("bus restart - more messages than the bridge holds arrive while NATS is away: the room's archive gives the rest, once, in order", async () => {
    if (nats === undefined) return;
    await startBridge({ maxWaiting: 3 });
    const bodies = numbered("stau", 10);
    await nats.restart(async () => {
      for (const body of bodies) {
        await say(body);
        await sleep(50);
      }
      await sleep(1000);
    }, "SIGKILL");
    const stored = await storedOnBus("stau", bodies.length, 60_000);
    expect(bodiesOf(stored)).toEqual(bodies);
    expect(
      logLines.some((l) => l.includes("3 messages of lage@") && l.includes("wait for the bus already")),
    ).toBe(true);
  }, 120_000);

  it("direct chat - NATS away when an officer writes to a puppet: the message waits and is bridged once, with no error to the sender", async () => {
    if (nats === undefined) return;
    await startBridge();
    const errorsBefore = heard.filter((m) => m.attrs["type"] === "error").length;
    await nats.restart(async () => {
      await officer.send(
        xml("message", { to: puppet, type: "chat", id: "dm-away-1" }, xml("body", {}, "direkt ohne NATS 1")),
      );
      // Longer than a request to NATS waits: without a retry, the message would be refused.
      await sleep(6000);
    }, "SIGKILL");
    await officer.send(
      xml("message", { to: puppet, type: "chat", id: "dm-away-2" }, xml("body", {}, "direkt ohne NATS 2")),
    );
    const stored = await storedOnBus("direkt ohne NATS", 2, 30_000);
    expect(bodiesOf(stored)).toEqual(["direkt ohne NATS 1", "direkt ohne NATS 2"]);
    expect(stored[0]?.source.conversation).toBe(scene.directWithClaire(officerJid).conversation);
    expect(heard.filter((m) => m.attrs["type"] === "error")).toHaveLength(errorsBefore);
    await stopBridge();
  }, 120_000);

  it("direct chat - NATS away longer than the bridge holds a message: its sender is told to send it again", async () => {
    if (nats === undefined) return;
    await startBridge({ giveUpAfterMs: 1500, maxDelayMs: 500 });
    await nats.restart(async () => {
      await officer.send(
        xml("message", { to: puppet, type: "chat", id: "dm-lost-1" }, xml("body", {}, "direkt zu lange")),
      );
      const error = await eventually(
        () => heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === "dm-lost-1"),
        20_000,
        "the error to the sender",
      );
      expect(error.attrs["from"]).toBe(puppet);
      expect(error.getChild("error")?.attrs["type"]).toBe("wait");
      expect(error.getChild("error")?.getChildText("text", NS.stanzas)).toMatch(/send it again/);
    }, "SIGKILL");
    await stopBridge();
  }, 120_000);

  it("direct chat - more direct messages than the bridge holds while NATS is away: the one past the bound is refused at once, asking to send it again", async () => {
    if (nats === undefined) return;
    await startBridge({ maxWaiting: 1 });
    await nats.restart(async () => {
      await officer.send(
        xml("message", { to: puppet, type: "chat", id: "dm-held" }, xml("body", {}, "direkt gehalten")),
      );
      await officer.send(
        xml("message", { to: puppet, type: "chat", id: "dm-past" }, xml("body", {}, "direkt zu viele")),
      );
      const error = await eventually(
        () => heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === "dm-past"),
        10_000,
        "the error to the sender",
      );
      expect(error.getChild("error")?.attrs["type"]).toBe("wait");
      expect(error.getChild("error")?.getChildText("text", NS.stanzas)).toMatch(/send it again/);
    }, "SIGKILL");
    expect(bodiesOf(await storedOnBus("direkt gehalten", 1, 30_000))).toEqual(["direkt gehalten"]);
    expect(heard.some((m) => m.attrs["type"] === "error" && m.attrs["id"] === "dm-held")).toBe(false);
  }, 120_000);
});
