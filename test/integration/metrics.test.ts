/**
 * The core's metrics count what it does and are scraped from /metrics on its admin port, as Prometheus
 * would: events routed to two targets show up as decisions by outcome.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { createLogger } from "../../gateway/platform/log.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { freePort } from "../harness/servers/serverProcess.js";
import { eventually, message, writeGatewayConfig, xmppRoom } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { sample, series } from "../helpers/metricsText.js";
import { runFedgate, type FedgateProcess } from "../helpers/processes.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const EVENTS = 5;

describe.skipIf(nats === undefined)("metrics - the core's counters, scraped from /metrics", () => {
  let gateway: FedgateProcess | undefined;
  let bus: JetStreamBus | undefined;
  let base = "";

  beforeAll(async () => {
    if (nats === undefined) return;
    const port = await freePort();
    base = `http://127.0.0.1:${String(port)}`;
    const config = await writeGatewayConfig(nats.url, {
      admin: { host: "127.0.0.1", port, token: { value: "metrics-token" } },
    });
    gateway = runFedgate(["gateway", "--config", config]);
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await eventually(
      async () => ((await fetch(`${base}/readyz`).catch(() => undefined))?.ok === true ? true : undefined),
      30_000,
      "the gateway ready",
    );
  });

  afterAll(async () => {
    gateway?.child.kill("SIGKILL");
    await bus?.close();
    await nats?.stop();
  });

  it(`metrics - ${EVENTS} messages routed to two conversations each: decisions, deliveries and route latency count them`, async () => {
    if (bus === undefined) return;
    const delivered = new Set<string>();
    const following = await bus.follow("FEDGATE_OUTBOUND", subjects.outboundAll, "start", (m) => {
      delivered.add(Buffer.from(m.data).toString());
    });
    for (let n = 0; n < EVENTS; n++) {
      const event = message(xmppRoom, `Lagemeldung ${String(n)}`);
      await bus.publish(subjects.inbound(event.source), encodeJson(event), { msgId: event.id });
    }
    // The example policy lets the link's XMPP room reach both other conversations.
    await eventually(() => (delivered.size >= 2 * EVENTS ? true : undefined), 20_000, "the deliveries");
    await following.stop();
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(sample(text, "fedgate_decisions_total", { decision: "deliver" })).toBe(2 * EVENTS);
    expect(sample(text, "fedgate_deliveries_total", { network: "stashcat", instance: "ni" })).toBe(EVENTS);
    expect(sample(text, "fedgate_route_latency_count", { network: "xmpp" })).toBe(EVENTS);
    // The only replica holds every partition.
    expect(sample(text, "fedgate_partition_leases")).toBeGreaterThan(0);
    const now = Date.now() / 1000;
    for (const direction of ["inbound", "outbound"]) {
      const at = sample(text, "fedgate_link_last_activity_seconds", { link: "lage", direction });
      expect(at).toBeGreaterThan(now - 60);
      expect(at).toBeLessThanOrEqual(now + 1);
    }
    // Read from the server in the background: each of the core's consumers has a series, all worked off.
    const lag = series(text, "fedgate_consumer_lag", { stream: "FEDGATE_INBOUND" });
    expect(lag.length).toBeGreaterThan(0);
    expect(series(text, "fedgate_consumer_ack_pending", { stream: "FEDGATE_INBOUND" })).toHaveLength(
      lag.length,
    );
  });
});
