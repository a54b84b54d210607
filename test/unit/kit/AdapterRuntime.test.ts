import { describe, expect, it } from "vitest";
import { AdapterRuntime, unsupported } from "../../../bridges/kit/AdapterRuntime.js";
import { stashcatCapabilities } from "../../../bridges/stashcat/capabilities.js";
import type { Delivery, NormalisedEvent } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { TransientError } from "../../../schemas/contract/errors.js";
import { auditRecordsIn, eventually } from "../../helpers/fixtures.js";
import { createLogger } from "../../../gateway/platform/log.js";

const log = createLogger("silent");

describe("AdapterRuntime", () => {
  it("AdapterRuntime - native input gets the same event id every time, distinct per instance, valid for the schema", async () => {
    const bus = new MemoryBus();
    const tchap = await AdapterRuntime.open(bus, { network: "matrix", instance: "tchap", log });
    const other = await AdapterRuntime.open(bus, { network: "matrix", instance: "other", log });
    const id = tchap.eventIdOf("$abc:tchap.gouv.fr");
    expect(id).toBe(tchap.eventIdOf("$abc:tchap.gouv.fr"));
    expect(id).not.toBe(other.eventIdOf("$abc:tchap.gouv.fr"));
    expect(id).not.toBe(tchap.eventIdOf("$abc:tchap.gouv.fr", "like"));
    // Parts are kept apart: ("a", "bc") is not ("ab", "c").
    expect(tchap.eventIdOf("a", "bc")).not.toBe(tchap.eventIdOf("ab", "c"));
    expect(id).toMatch(/^[0-9A-Za-z][0-9A-Za-z_-]{7,63}$/);
    await tchap.close();
    await other.close();
  });

  /** A message published by `runtime` as it reaches the bus. */
  function inboundOf(bus: MemoryBus): NormalisedEvent[] {
    return bus
      .messages(subjects.inboundAll)
      .map((m) => JSON.parse(Buffer.from(m.data).toString()) as NormalisedEvent);
  }

  it("AdapterRuntime - a name of any length or with control and direction characters is cleaned, not a refusal", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const runtime = await AdapterRuntime.open(bus, { network: "stashcat", instance: "ni", log });
    const event: NormalisedEvent = {
      specVersion: "1",
      id: runtime.eventIdOf("1"),
      type: "message.created",
      source: { network: "stashcat", instance: "ni", conversation: "channel:1001" },
      // A right-to-left override makes "Meyer (Bundespolizei)" read as something else; a bell stops Prosody.
      sender: { userId: "42", displayName: `Meyer\u202e\u0007\n(BKA) ${"x".repeat(400)}` },
      content: { body: "Lage\u0007 ruhig\nEnde\u0000", attachments: [] },
      timestamp: new Date().toISOString(),
    };
    await runtime.publish(event);
    const [published] = inboundOf(bus);
    expect(published?.sender.displayName).toMatch(/^Meyer \(BKA\) x+$/);
    expect(Array.from(published?.sender.displayName ?? "")).toHaveLength(256);
    expect(published?.content?.body).toBe("Lage ruhig\nEnde");
    await runtime.close();
  });

  it("AdapterRuntime - a delivery reaches the bridge without what XML forbids or names could hide", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const runtime = await AdapterRuntime.open(bus, { network: "xmpp", instance: "bpol", log });
    const handled: Delivery[] = [];
    await runtime.consumeDeliveries((delivery) => {
      handled.push(delivery);
      return Promise.resolve(undefined);
    });
    const delivery: Delivery = {
      specVersion: "1",
      id: "delivery-1",
      event: {
        specVersion: "1",
        id: "event-00000001",
        type: "message.created",
        source: { network: "matrix", instance: "tchap", conversation: "!r:tchap" },
        sender: { userId: "@claire:tchap", displayName: "Claire\u2066 Martin\u0007" },
        content: { body: "Bonjour\u0007 \ud800tout le monde\uffff", html: "<b>Bonjour\u0008</b>" },
        timestamp: new Date().toISOString(),
      },
      target: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol", agency: "bpol" },
      senderAgency: { id: "dinum-mi", name: "Ministère\u202e de l'Intérieur", country: "FR" },
    };
    await bus.publish(subjects.outbound("xmpp", "bpol"), encodeJson(delivery));
    await eventually(() => (handled.length > 0 ? true : undefined), 2000);
    const [got] = handled;
    expect(got?.event.sender.displayName).toBe("Claire Martin");
    expect(got?.event.content?.body).toBe("Bonjour tout le monde");
    expect(got?.event.content?.html).toBe("<b>Bonjour</b>");
    expect(got?.senderAgency?.name).toBe("Ministère de l'Intérieur");
    await runtime.close();
  });

  it("AdapterRuntime - a message the bus did not store is not taken as bridged: seen again, it is published", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const runtime = await AdapterRuntime.open(bus, { network: "xmpp", instance: "bpol", log });
    const source = {
      network: "xmpp",
      instance: "bpol",
      conversation: "lage@conference.bpol",
      messageId: "m1",
    };
    const event: NormalisedEvent = {
      specVersion: "1",
      id: runtime.eventIdOf("m1"),
      type: "message.created",
      source,
      sender: { userId: "weber@bpol", displayName: "Weber" },
      content: { body: "Lage ruhig" },
      timestamp: new Date().toISOString(),
    };
    // NATS goes away as the event is published; the message map is still reachable.
    const publish = bus.publish.bind(bus);
    bus.publish = () =>
      Promise.reject(new TransientError("FG_BUS_PUBLISH_FAILED", "cannot publish: timeout"));
    await expect(runtime.publish(event)).rejects.toThrow("cannot publish");
    expect(await runtime.messages.eventId(source, "m1")).toBeUndefined();
    bus.publish = publish;
    // The bridge sees it again (a retry, an archive) and asks whether it was bridged: not yet.
    await runtime.publish(event);
    expect(inboundOf(bus).map((e) => e.id)).toEqual([event.id]);
    expect(await runtime.messages.eventId(source, "m1")).toBe(event.id);
    await runtime.close();
  });

  it("AdapterRuntime - an event the network cannot show is audited as unsupported, acked, and not mapped as delivered", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const runtime = await AdapterRuntime.open(bus, { network: "stashcat", instance: "ni", log });
    let calls = 0;
    await runtime.consumeDeliveries(() => {
      calls += 1;
      return Promise.resolve(unsupported("Stashcat shows no membership of people on other networks"));
    });
    const delivery: Delivery = {
      specVersion: "1",
      id: "delivery-joined",
      event: {
        specVersion: "1",
        id: "event-00000002",
        type: "member.joined",
        source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol" },
        sender: { userId: "weber@bpol", displayName: "Weber", agency: "bpol" },
        timestamp: new Date().toISOString(),
      },
      target: { network: "stashcat", instance: "ni", conversation: "channel:1001", agency: "polizei-ni" },
    };
    await bus.publish(subjects.outbound("stashcat", "ni"), encodeJson(delivery));
    const [batch] = await eventually(() => {
      const stored = bus.messages(subjects.audit("unsupported"));
      return stored.length > 0 ? stored : undefined;
    }, 2000);
    const [record, ...more] = auditRecordsIn(batch?.data ?? new Uint8Array());
    expect(more).toEqual([]);
    expect(record).toMatchObject({
      eventId: "event-00000002",
      eventType: "member.joined",
      decision: "unsupported",
      reason: "unsupported-by-network",
      detail: "Stashcat shows no membership of people on other networks",
      source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol", agency: "bpol" },
      target: delivery.target,
      decidedBy: "stashcat-ni",
    });
    // Handled once (acked, not handed out again), and nothing native stands for it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls).toBe(1);
    expect(await runtime.messages.nativeId("event-00000002", delivery.target)).toBeUndefined();
    await runtime.close();
  });

  it("AdapterRuntime - a delivery the network's capabilities rule out is audited as unsupported without reaching the adapter", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const runtime = await AdapterRuntime.open(bus, {
      network: "stashcat",
      instance: "ni",
      log,
      capabilities: stashcatCapabilities,
    });
    const handled: string[] = [];
    await runtime.consumeDeliveries((delivery) => {
      handled.push(delivery.event.type);
      return Promise.resolve(undefined);
    });
    const target = {
      network: "stashcat",
      instance: "ni",
      conversation: "channel:1001",
      agency: "polizei-ni",
    };
    const deliveryOf = (id: string, type: "member.left" | "message.created"): Delivery => ({
      specVersion: "1",
      id: `delivery-${id}`,
      event: {
        specVersion: "1",
        id: `event-0000000${id}`,
        type,
        source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol" },
        sender: { userId: "weber@bpol" },
        ...(type === "message.created" ? { content: { body: "Lage ruhig" } } : {}),
        timestamp: new Date().toISOString(),
      },
      target,
    });
    await bus.publish(subjects.outbound("stashcat", "ni"), encodeJson(deliveryOf("3", "member.left")));
    await bus.publish(subjects.outbound("stashcat", "ni"), encodeJson(deliveryOf("4", "message.created")));
    await eventually(() => (handled.length > 0 ? true : undefined), 2000);
    expect(handled).toEqual(["message.created"]);
    const records = bus.messages(subjects.audit("unsupported")).flatMap((m) => auditRecordsIn(m.data));
    expect(records.map((r) => [r.eventId, r.reason, r.detail])).toEqual([
      ["event-00000003", "unsupported-by-network", "stashcat shows no leaving of people on other networks"],
    ]);
    await runtime.close();
  });
});
