/**
 * The adapter contract as scenarios, written once and run against each network's harness: native input
 * becomes one event; a delivery becomes a native message that shows who wrote it and its marking, and that
 * later replies, edits and deletions find; what the network cannot show is audited as unsupported; the
 * gateway's notice is the bridge's, never a person's; what was said while the adapter was away is caught up
 * once. Deliveries are published as the core publishes them, on a bus of the harness's choosing.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { MemoryBus } from "../../gateway/platform/bus/MemoryBus.js";
import { type Capabilities, unsupportedReason } from "../../bridges/kit/capabilities.js";
import { subjects } from "../../schemas/contract/subjects.js";
import type { Delivery, NormalisedEvent } from "../../schemas/types.js";
import { auditRecordsIn, eventually } from "../helpers/fixtures.js";

export interface ShownMessage {
  /** The id the network's references (replies, corrections, retractions) use for it. */
  id: string;
  /** Who the network shows as its author (a puppet's name, or the bridge's account). */
  author: string;
  text: string;
  replyTo?: string;
  deleted?: boolean;
}

/** One network's side of the scenarios. */
export interface AdapterUnderTest {
  network: string;
  instance: string;
  /** A linked conversation of that network, as the adapter names it. */
  conversation: string;
  capabilities: Capabilities;
  /** Starts the adapter on the bus, or starts it again after stop(). */
  start(bus: Bus): Promise<void>;
  /** Stops the adapter; nothing when it is not running. */
  stop(): Promise<void>;
  /** A person of the network writes in the conversation; resolves once the network has the message. */
  say(text: string): Promise<void>;
  /** The conversation as the network shows it. */
  shown(): Promise<ShownMessage[]>;
  /** Stops what the harness started for the network (its server), after the scenario. */
  close(): Promise<void>;
}

const weber = { userId: "weber@bpol.example", displayName: "Weber", agency: "bpol" };
let sequence = 0;

function eventId(): string {
  sequence += 1;
  return `conformance-${String(Date.now())}-${String(sequence)}`;
}

/** Runs the scenarios; `unavailable` skips them where the network's server cannot run (never under CI). */
export function describeAdapterConformance(
  name: string,
  make: () => Promise<AdapterUnderTest>,
  unavailable = false,
): void {
  describe.skipIf(unavailable)(`conformance - ${name}`, () => {
    const made: AdapterUnderTest[] = [];
    // A scenario that failed midway left its adapter running: stopped here, so the next one starts clean.
    afterEach(async () => {
      for (const adapter of made.splice(0)) {
        await adapter.stop();
        await adapter.close();
      }
    });

    async function started(): Promise<{ bus: MemoryBus; adapter: AdapterUnderTest }> {
      const bus = new MemoryBus();
      await bus.ensureTopology();
      const adapter = await make();
      made.push(adapter);
      await adapter.start(bus);
      return { bus, adapter };
    }

    function inbound(bus: MemoryBus): NormalisedEvent[] {
      return bus
        .messages(subjects.inboundAll)
        .map((m) => JSON.parse(Buffer.from(m.data).toString("utf8")) as NormalisedEvent);
    }

    function deliveryOf(adapter: AdapterUnderTest, event: Partial<NormalisedEvent>): Delivery {
      const full: NormalisedEvent = {
        specVersion: "1",
        id: eventId(),
        type: "message.created",
        // A network of its own, so that no adapter takes the sender for one of its own people.
        source: { network: "elsewhere", instance: "bpol", conversation: "lage" },
        sender: weber,
        timestamp: new Date().toISOString(),
        ...event,
      };
      return {
        specVersion: "1",
        id: `${full.id}.${adapter.network}`,
        event: full,
        target: {
          network: adapter.network,
          instance: adapter.instance,
          conversation: adapter.conversation,
          agency: "own",
        },
        senderAgency: { id: "bpol", name: "Bundespolizei", country: "DE" },
      };
    }

    async function deliver(bus: Bus, adapter: AdapterUnderTest, delivery: Delivery): Promise<void> {
      await bus.publish(subjects.outbound(adapter.network, adapter.instance), encodeJson(delivery), {
        msgId: delivery.id,
      });
    }

    /** Waits for the message showing `text`; a timeout says what the network showed instead. */
    async function shownWith(adapter: AdapterUnderTest, text: string): Promise<ShownMessage> {
      try {
        return await eventually(
          async () => (await adapter.shown()).find((m) => m.text.includes(text)),
          10_000,
          text,
        );
      } catch (error) {
        throw new Error(`${String(error)}; shown: ${JSON.stringify(await adapter.shown())}`, {
          cause: error,
        });
      }
    }

    it("conformance - a native message becomes one event, with where it was written and by whom", async () => {
      const { bus, adapter } = await started();
      await adapter.say("Lage ruhig");
      const event = await eventually(() => inbound(bus).find((e) => e.content?.body === "Lage ruhig"));
      expect(event.type).toBe("message.created");
      expect(event.source).toMatchObject({
        network: adapter.network,
        instance: adapter.instance,
        conversation: adapter.conversation,
      });
      expect(event.source.messageId).toBeDefined();
      expect(event.sender.userId).not.toBe("");
      await adapter.stop();
    });

    it("conformance - a delivery shows who wrote it, their agency and the marking, and a reply finds it", async () => {
      const { bus, adapter } = await started();
      const first = deliveryOf(adapter, { content: { body: "Lagebesprechung 14 Uhr" } });
      await deliver(bus, adapter, { ...first, marking: { id: "DE-VS-NFD", label: "VS-NfD" } });
      const shown = await shownWith(adapter, "Lagebesprechung 14 Uhr");
      expect(`${shown.author} ${shown.text}`).toContain("Weber (Bundespolizei)");
      expect(shown.text).toContain("VS-NfD");
      const reply = deliveryOf(adapter, {
        content: { body: "Verstanden" },
        relations: { replyTo: first.event.id },
      });
      await deliver(bus, adapter, reply);
      expect((await shownWith(adapter, "Verstanden")).replyTo).toBe(shown.id);
      await adapter.stop();
    });

    it("conformance - an edit and a deletion reach the message delivered before, where the network has them", async () => {
      const { bus, adapter } = await started();
      const original = deliveryOf(adapter, { content: { body: "Treffpunkt Nord" } });
      await deliver(bus, adapter, original);
      const shown = await shownWith(adapter, "Treffpunkt Nord");
      if (adapter.capabilities.edits !== "none") {
        await deliver(
          bus,
          adapter,
          deliveryOf(adapter, {
            type: "message.edited",
            content: { body: "Treffpunkt Süd" },
            relations: { replaces: original.event.id },
          }),
        );
        const corrected = await shownWith(adapter, "Treffpunkt Süd");
        // A native correction changes the message itself; otherwise a new message says it was corrected.
        if (adapter.capabilities.edits === "native") expect(corrected.id).toBe(shown.id);
        else expect(corrected.id).not.toBe(shown.id);
      }
      if (adapter.capabilities.deletions !== "none") {
        await deliver(
          bus,
          adapter,
          deliveryOf(adapter, { type: "message.deleted", relations: { redacts: original.event.id } }),
        );
        await eventually(async () =>
          (await adapter.shown()).find((m) => m.id === shown.id)?.deleted === true ? true : undefined,
        );
      }
      await adapter.stop();
    });

    it("conformance - what the network cannot show is audited as unsupported and shows nothing", async () => {
      const { bus, adapter } = await started();
      const ruledOut = (
        ["member.joined", "member.left", "message.edited", "message.deleted"] as const
      ).filter((type) => unsupportedReason(adapter.network, adapter.capabilities, type) !== undefined);
      for (const type of ruledOut) {
        const delivery = deliveryOf(adapter, {
          type,
          ...(type.startsWith("message.") ? { relations: { replaces: "x", redacts: "x" } } : {}),
          ...(type === "message.edited" ? { content: { body: "nie gezeigt" } } : {}),
        });
        await deliver(bus, adapter, delivery);
        const record = await eventually(() =>
          bus
            .messages(subjects.audit("unsupported"))
            .flatMap((m) => auditRecordsIn(m.data))
            .find((r) => r.eventId === delivery.event.id),
        );
        expect(record.reason).toBe("unsupported-by-network");
      }
      // Whatever was ruled out, the next message still arrives: nothing stuck behind it.
      await deliver(bus, adapter, deliveryOf(adapter, { content: { body: "danach" } }));
      await shownWith(adapter, "danach");
      expect((await adapter.shown()).some((m) => m.text.includes("nie gezeigt"))).toBe(false);
      await adapter.stop();
    });

    it("conformance - the gateway's notice back into a conversation is the bridge's, not a person's", async () => {
      const { bus, adapter } = await started();
      const notice = deliveryOf(adapter, {
        type: "notice",
        source: { network: adapter.network, instance: adapter.instance, conversation: adapter.conversation },
        content: { body: "Nicht zugestellt: keine Freigabe" },
      });
      await deliver(bus, adapter, notice);
      const shown = await shownWith(adapter, "Nicht zugestellt: keine Freigabe");
      expect(`${shown.author} ${shown.text}`).not.toContain("Weber (Bundespolizei)");
      await adapter.stop();
    });

    it("conformance - what was written while the adapter was away is caught up, once", async () => {
      const { bus, adapter } = await started();
      await adapter.say("vorher");
      await eventually(() => inbound(bus).find((e) => e.content?.body === "vorher"));
      await adapter.stop();
      await adapter.say("während der Pause");
      await adapter.start(bus);
      await eventually(() => inbound(bus).find((e) => e.content?.body === "während der Pause"));
      expect(inbound(bus).filter((e) => e.content?.body === "vorher")).toHaveLength(1);
      await adapter.stop();
    });
  });
}
