/**
 * What a bridge process measures, scraped from /metrics in Prometheus' text format as an operator's Prometheus
 * would: latencies of the events it publishes and the deliveries it sends, and its Matrix AS endpoint's requests.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdapterRuntime } from "../../../bridges/kit/AdapterRuntime.js";
import { listenAppService } from "../../../bridges/matrix/AppServiceEndpoint.js";
import type { Delivery } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { startTelemetry, stopTelemetry } from "../../../gateway/platform/telemetry.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { eventually, message, stashcatChannel, xmppRoom } from "../../helpers/fixtures.js";
import { sample, scrapeThisProcess } from "../../helpers/metricsText.js";

const log = createLogger("silent");

describe("bridge metrics - scraped from /metrics", () => {
  beforeAll(() => startTelemetry({ serviceName: "fedgate-bridge-test" }));
  afterAll(() => stopTelemetry());

  it("bridge metrics - an event published and a delivery sent: publish latency, end-to-end latency and send duration", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const xmpp = await AdapterRuntime.open(bus, { network: "xmpp", instance: "bpol", log });
    const stashcat = await AdapterRuntime.open(bus, { network: "stashcat", instance: "ni", log });
    let sent = 0;
    await stashcat.consumeDeliveries(() => {
      sent++;
      return Promise.resolve("native-1");
    });
    // Received natively two seconds ago: both latencies count from then.
    const receivedAt = new Date(Date.now() - 2000).toISOString();
    const event = message(xmppRoom, "Lage ruhig", { timestamp: receivedAt });
    await xmpp.publish(event);
    const delivery: Delivery = { specVersion: "1", id: `${event.id}.s`, event, target: stashcatChannel };
    await bus.publish(subjects.outbound("stashcat", "ni"), encodeJson(delivery));
    await eventually(() => (sent > 0 ? true : undefined), 2000, "the delivery sent");
    await bus.settled();

    const text = await scrapeThisProcess();
    expect(sample(text, "fedgate_bridge_publish_latency_count", { network: "xmpp" })).toBe(1);
    expect(sample(text, "fedgate_bridge_publish_latency_sum", { network: "xmpp" })).toBeGreaterThanOrEqual(
      2000,
    );
    const e2e = { network: "stashcat", source_network: "xmpp" };
    expect(sample(text, "fedgate_delivery_latency_count", e2e)).toBe(1);
    expect(sample(text, "fedgate_delivery_latency_sum", e2e)).toBeGreaterThanOrEqual(2000);
    expect(sample(text, "fedgate_delivery_send_duration_count", { network: "stashcat" })).toBe(1);
    await Promise.all([xmpp.close(), stashcat.close()]);
  });

  it("bridge metrics - native input a bridge refused counts as a dead letter by code, once however often it is refused", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const xmpp = await AdapterRuntime.open(bus, { network: "xmpp", instance: "bpol", log });
    const refusal = new PermanentError("FG_EVENT_INVALID", "not a message this bridge can read");
    await xmpp.deadLetter("lage@conference.bpol", "<message/>", refusal, "stanza-1");
    await xmpp.deadLetter("lage@conference.bpol", "<message/>", refusal, "stanza-1");
    const text = await scrapeThisProcess();
    expect(
      sample(text, "fedgate_dead_letters_total", { origin: "xmpp-bpol", code: "FG_EVENT_INVALID" }),
    ).toBe(1);
    await xmpp.close();
  });

  it("bridge metrics - Matrix AS requests by route class and status, and their duration; hostile paths fall into one class", async () => {
    const hsToken = "hs-token-metrics";
    const server = await listenAppService(
      { hsToken, txns: new MemoryKeyValue(), onEvents: () => Promise.resolve(), log },
      "127.0.0.1",
      0,
    );
    try {
      const put = (path: string, token: string): Promise<Response> =>
        fetch(`${server.url}${path}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ events: [] }),
        });
      expect((await put("/_matrix/app/v1/transactions/t1", hsToken)).status).toBe(200);
      expect((await put("/_matrix/app/v1/transactions/t2", hsToken)).status).toBe(200);
      expect((await put("/_matrix/app/v1/transactions/t3", "wrong")).status).toBe(403);
      for (let n = 0; n < 3; n++) await put(`/random/${String(n)}`, hsToken);
      const text = await scrapeThisProcess();
      expect(sample(text, "fedgate_appservice_requests_total", { route: "transaction", status: "200" })).toBe(
        2,
      );
      expect(sample(text, "fedgate_appservice_requests_total", { route: "transaction", status: "403" })).toBe(
        1,
      );
      expect(sample(text, "fedgate_appservice_requests_total", { route: "other", status: "404" })).toBe(3);
      expect(sample(text, "fedgate_appservice_request_duration_count", { route: "transaction" })).toBe(3);
      expect(text).not.toContain("random");
    } finally {
      await server.close();
    }
  });
});
