/**
 * One trace from the native message to the native delivery on the other side: an officer writes in an XMPP
 * room, the XMPP bridge (a process of its own) publishes it, the core (another) routes it, and the Stashcat
 * bridge (a third) posts it in the linked channel. Each process exports its spans to an OTLP/HTTP receiver in
 * this test, which finds them in one trace, linked parent to child across the three.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../gateway/platform/log.js";
import { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import { buckets } from "../../schemas/contract/topology.js";
import { OtlpReceiver, type ReceivedSpan } from "../harness/servers/OtlpReceiver.js";
import { freePort } from "../harness/servers/serverProcess.js";
import { eventually, writeGatewayConfig } from "../helpers/fixtures.js";
import { sample } from "../helpers/metricsText.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../helpers/prosody.js";
import { runFedgate, type FedgateProcess } from "../helpers/processes.js";
import { scratchDir } from "../helpers/scratchDir.js";
import {
  einsatz,
  Officer,
  SCHULZ,
  startStashcatScene,
  stashcatTarget,
  writeStashcatBridgeConfig,
} from "../helpers/stashcatScenes.js";
import { addWeber, bridgeInRoom, weberInRoom } from "../helpers/xmppScenes.js";

const log = createLogger("silent");

/** A bridge process's /metrics, on the status port its log names (the configs ask for any free port). */
async function scrapeBridge(bridge: FedgateProcess): Promise<string> {
  const line = bridge
    .output()
    .split("\n")
    .find((l) => l.includes("probes and metrics served"));
  const url = line === undefined ? undefined : (JSON.parse(line) as { url?: string }).url;
  if (url === undefined) throw new Error(`the bridge named no status port:\n${bridge.output()}`);
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}
const scene = await startStashcatScene();
const prosody = scene === undefined ? undefined : await startProsodyOrSkip();

describe.skipIf(scene === undefined || prosody === undefined)(
  "traces - one message followed from XMPP through the core to Stashcat",
  () => {
    const processes: FedgateProcess[] = [];
    const heard: Element[] = [];
    const present = new Set<string>();
    let receiver: OtlpReceiver;
    let bus: JetStreamBus;
    let weber: XmppClient | undefined;
    let schulz: Officer;
    let room = "";

    beforeAll(async () => {
      if (scene === undefined || prosody === undefined) return;
      receiver = await OtlpReceiver.start();
      // Every process exports to the receiver, as JSON, its spans within a fifth of a second.
      const env = {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
        OTEL_BSP_SCHEDULE_DELAY: "200",
        OTEL_METRIC_EXPORT_INTERVAL: "600000",
      };
      room = `spur@${prosody.mucDomain}`;
      bus = await JetStreamBus.connect({ servers: scene.nats.url, log });
      await bus.ensureTopology();
      const links = new LinkStore(await bus.keyValue(buckets.links));
      await links.create({
        id: "spur",
        endpoints: [
          { network: "xmpp", instance: "bpol", conversation: room, agency: "bpol" },
          stashcatTarget(einsatz),
        ],
      });
      await addWeber(prosody);
      weber = await weberInRoom(prosody, room, { heard, present });

      const adminPort = await freePort();
      const gatewayConfig = await writeGatewayConfig(scene.nats.url, {
        links: [],
        admin: { host: "127.0.0.1", port: adminPort, token: { value: "traces-token" } },
      });
      const xmppConfig = join(await scratchDir("xmpp-bridge"), "config.yaml");
      await writeFile(
        xmppConfig,
        stringify({
          nats: { url: scene.nats.url },
          log: { level: "info" },
          bridges: {
            xmpp: { ...prosody.bridgeConfig(), agency: "bpol", status: { host: "127.0.0.1", port: 0 } },
          },
        }),
      );
      const stashcatConfig = await writeStashcatBridgeConfig(scene);
      processes.push(
        runFedgate(["gateway", "--config", gatewayConfig], env),
        runFedgate(["bridge", "xmpp", "--config", xmppConfig], env),
        runFedgate(["bridge", "stashcat", "--config", stashcatConfig], env),
      );
      await eventually(
        async () =>
          (await fetch(`http://127.0.0.1:${String(adminPort)}/readyz`).catch(() => undefined))?.ok === true
            ? true
            : undefined,
        60_000,
        "the gateway ready",
      );
      await Promise.all(processes.slice(1).map((p) => p.waitFor("bridge started", 60_000)));
      await bridgeInRoom(present, room, 30_000);
      schulz = await Officer.login(scene, SCHULZ, log);
    }, 120_000);

    afterAll(async () => {
      for (const p of processes) if (p.child.exitCode === null) p.child.kill("SIGKILL");
      await stopClient(weber);
      await bus.close();
      await receiver.close();
      await prosody?.stop();
      await scene?.stop();
    });

    it("traces - the XMPP bridge's receive, the core's route and the Stashcat bridge's native send: one trace, three services, each span the child of the one before", async () => {
      await weber?.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, "Spur 1")));
      await eventually(
        async () => ((await schulz.read(einsatz)).some((m) => m.plain.includes("Spur 1")) ? true : undefined),
        30_000,
        "the message in the Stashcat channel",
      );
      const deliveredMessage = (s: ReceivedSpan): boolean =>
        s.name === "fedgate.deliver" && s.attributes["fedgate.event.type"] === "message.created";
      const deliver = await eventually(
        () => receiver.spans.find(deliveredMessage),
        15_000,
        "the deliver span",
      );
      const traceSpans = (): ReceivedSpan[] => receiver.spans.filter((s) => s.traceId === deliver.traceId);
      await eventually(() => (traceSpans().length >= 3 ? true : undefined), 15_000, "the trace's spans");
      const byId = new Map(traceSpans().map((s) => [s.spanId, s]));
      const route = byId.get(deliver.parentSpanId ?? "");
      const receive = byId.get(route?.parentSpanId ?? "");
      expect(deliver.service).toBe("fedgate-bridge-stashcat");
      expect(route?.name).toBe("fedgate.route");
      expect(route?.service).toBe("fedgate-gateway");
      expect(receive?.name).toBe("fedgate.receive");
      expect(receive?.service).toBe("fedgate-bridge-xmpp");
      expect(receive?.parentSpanId).toBeUndefined();
      expect(new Set(traceSpans().map((s) => s.service))).toEqual(
        new Set(["fedgate-bridge-xmpp", "fedgate-gateway", "fedgate-bridge-stashcat"]),
      );
      // The same event throughout.
      expect(route?.attributes["fedgate.event.id"]).toBe(deliver.attributes["fedgate.event.id"]);
      expect(receive?.attributes["fedgate.event.id"]).toBe(deliver.attributes["fedgate.event.id"]);
    }, 90_000);

    it("traces - each bridge's /metrics on its status port: the publishing one its publish latency, the delivering one the end-to-end latency", async () => {
      const [, xmppBridge, stashcatBridge] = processes;
      if (xmppBridge === undefined || stashcatBridge === undefined)
        throw new Error("the bridges did not start");
      const published = await scrapeBridge(xmppBridge);
      expect(
        sample(published, "fedgate_bridge_publish_latency_count", { network: "xmpp" }),
      ).toBeGreaterThanOrEqual(1);
      const delivered = await scrapeBridge(stashcatBridge);
      const e2e = { network: "stashcat", source_network: "xmpp" };
      expect(sample(delivered, "fedgate_delivery_latency_count", e2e)).toBeGreaterThanOrEqual(1);
      expect(
        sample(delivered, "fedgate_delivery_send_duration_count", { network: "stashcat" }),
      ).toBeGreaterThanOrEqual(1);
      expect(delivered).toContain('service_name="fedgate-bridge-stashcat"');
    });
  },
);
