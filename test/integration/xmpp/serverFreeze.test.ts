/**
 * "Connected, but nothing arrives": Prosody frozen (SIGSTOP) with the component's TCP connection open, as a
 * hung server or a half-dead network path leaves it. The bridge process must notice by its XMPP pings (its
 * /readyz fails), drop the silent stream, connect again once the server is back, and lose nothing either way:
 * every message the officer wrote reaches the bus once, in order, and every delivery reaches the officer once,
 * in order.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { freePort } from "../../harness/servers/serverProcess.js";
import { eventually } from "../../helpers/fixtures.js";
import { probe, readyzTurns } from "../../helpers/probes.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { runFedgate, type FedgateProcess } from "../../helpers/processes.js";
import { scratchDir } from "../../helpers/scratchDir.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

/** The bridge's pings: one a second, each given a second. */
const CHECK = { intervalMs: 1000, timeoutMs: 1000 };
/** How soon a frozen server must show in /readyz: a ping's interval and timeout, and slack for the machine. */
const NOTICE_MS = CHECK.intervalMs + CHECK.timeoutMs + 3000;
/** How long the server stays frozen: several pings fail meanwhile. */
const FROZEN_MS = 8000;
/** How soon after the thaw the bridge must be back in the room and ready. */
const RECOVERY_MS = 20_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function numbered(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} ${String(i + 1).padStart(3, "0")}`);
}

describe.skipIf(nats === undefined || prosody === undefined)("XMPP bridge - server frozen, NATS away", () => {
  let bus: JetStreamBus;
  let bridge: FedgateProcess | undefined;
  let officer: XmppClient & { errors: Error[] };
  let room = "";
  let status = "";
  const present = new Set<string>();
  const heard: Element[] = [];
  const inbound: NormalisedEvent[] = [];

  const healthz = (): Promise<number> => probe(status, "/healthz");
  /** Milliseconds until /readyz answers `expected`. */
  const until = (expected: number, timeoutMs: number, what: string): Promise<number> =>
    readyzTurns(status, expected, timeoutMs, what);

  beforeAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    room = `frost@${prosody.mucDomain}`;
    bus = await scene.linkedBus(nats.url, log, room);
    await scene.collectInbound(bus, inbound);
    await scene.addWeber(prosody);
    officer = await scene.weberInRoom(prosody, room, { heard, present }, { available: true });
    const port = await freePort();
    status = `http://127.0.0.1:${String(port)}`;
    const config = join(await scratchDir("xmpp-freeze"), "config.yaml");
    await writeFile(
      config,
      stringify({
        nats: { url: nats.url },
        log: { level: "info" },
        bridges: {
          xmpp: {
            ...prosody.bridgeConfig(),
            agency: "bpol",
            status: { host: "127.0.0.1", port },
            connectionCheck: CHECK,
          },
        },
      }),
    );
    bridge = runFedgate(["bridge", "xmpp", "--config", config]);
    await scene.bridgeInRoom(present, room, 60_000);
    await until(200, 30_000, "the bridge ready");
  }, 120_000);

  afterAll(async () => {
    if (nats === undefined || prosody === undefined) return;
    await prosody.signal("SIGCONT");
    bridge?.child.kill("SIGKILL");
    await stopClient(officer);
    await bus.close();
    await prosody.stop();
    await nats.stop();
  });

  it("bridge readiness - Prosody SIGSTOP with the stream open: /readyz fails within seconds, the bridge reconnects after SIGCONT, nothing lost either way", async () => {
    if (prosody === undefined) return;
    expect(await healthz()).toBe(200);
    const written = numbered("eis", 30);
    const delivered = numbered("neige", 20);
    let noticedMs = 0;
    let recoveredMs = 0;
    const freeze = async (): Promise<void> => {
      await prosody.signal("SIGSTOP");
      try {
        noticedMs = await until(503, NOTICE_MS, "/readyz 503 with the server frozen");
        // Liveness is not readiness: the process is fine, its server is not.
        expect(await healthz()).toBe(200);
        await sleep(FROZEN_MS - noticedMs);
      } finally {
        await prosody.signal("SIGCONT");
      }
      recoveredMs = await until(200, RECOVERY_MS, "/readyz 200 after the thaw");
    };

    // Both directions flow through the freeze: the officer writes, and deliveries for the room arrive.
    let freezing: Promise<void> | undefined;
    for (const [i, body] of written.entries()) {
      await officer.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, body)));
      const text = delivered[i];
      if (text !== undefined)
        await scene.deliverFromClaire(bus, scene.roomTarget(room), {
          id: `freeze-${String(i)}`,
          type: "message.created",
          content: { body: text },
        });
      if (i === 5) freezing = freeze();
      await sleep(300);
    }
    await freezing;

    const onBus = (): string[] =>
      inbound
        .filter((e) => e.type === "message.created" && e.content?.body?.startsWith("eis ") === true)
        .map((e) => e.content?.body ?? "");
    const atOfficer = (): string[] =>
      heard.map((m) => m.getChildText("body") ?? "").filter((body) => body.startsWith("neige "));
    await eventually(() => (onBus().length >= written.length ? true : undefined), 60_000, "all on the bus");
    await eventually(
      () => (atOfficer().length >= delivered.length ? true : undefined),
      60_000,
      "all at the officer",
    );
    // Anything doubled arrives with the rest.
    await sleep(2000);
    expect(onBus()).toEqual(written);
    expect(atOfficer()).toEqual(delivered);

    const output = bridge?.output() ?? "";
    expect(output).toContain("the server does not answer on an open connection; reconnecting");
    const metrics = await (await fetch(`${status}/metrics`)).text();
    const value = (name: string): number =>
      Number(new RegExp(`^${name}\\{[^}]*instance="bpol"[^}]*\\} (\\d+)`, "m").exec(metrics)?.[1] ?? 0);
    expect(value("fedgate_bridge_stalls_total")).toBeGreaterThanOrEqual(1);
    expect(value("fedgate_bridge_reconnects_total")).toBeGreaterThanOrEqual(1);
    expect(value("fedgate_bridge_connected")).toBe(1);
    console.error(
      `XMPP bridge, Prosody frozen ${FROZEN_MS / 1000} s: /readyz 503 after ${noticedMs} ms, ready again ${recoveredMs} ms after the thaw`,
    );
  }, 180_000);

  it("bridge readiness - NATS killed: the bridge's /readyz fails within seconds and recovers on its own once NATS is back", async () => {
    if (nats === undefined) return;
    let noticedMs = 0;
    await nats.restart(async () => {
      noticedMs = await until(503, NOTICE_MS, "/readyz 503 with NATS down");
      expect(await healthz()).toBe(200);
    }, "SIGKILL");
    const recoveredMs = await until(200, RECOVERY_MS, "/readyz 200 with NATS back");
    console.error(
      `XMPP bridge, NATS killed: /readyz 503 after ${String(noticedMs)} ms, ready again ${String(recoveredMs)} ms after NATS restarted`,
    );
  }, 60_000);
});
