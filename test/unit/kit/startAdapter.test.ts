import { describe, expect, it } from "vitest";
import type { Delivery } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { AdapterRuntime } from "../../../bridges/kit/AdapterRuntime.js";
import { startAdapter, type NetworkAdapter } from "../../../bridges/kit/startAdapter.js";
import { eventually } from "../../helpers/fixtures.js";

const log = createLogger("silent");

/** What the kit did with a test adapter, in order. */
class TestAdapter implements NetworkAdapter {
  readonly steps: string[] = [];
  readonly delivered: string[] = [];
  /** This instance's linked conversations, as each reconcile saw them. */
  readonly seen: string[][] = [];

  constructor(
    readonly runtime: AdapterRuntime,
    private readonly failAfterStart = false,
  ) {}

  deliver = (delivery: Delivery): Promise<string> => {
    this.delivered.push(delivery.event.content?.body ?? "");
    return Promise.resolve(`native-${String(this.delivered.length)}`);
  };

  reconcileLinks(): Promise<void> {
    this.seen.push(this.runtime.linked.list().map(({ endpoint }) => endpoint.conversation));
    return Promise.resolve();
  }

  afterStart(): Promise<void> {
    this.steps.push("afterStart");
    return this.failAfterStart ? Promise.reject(new Error("push refused")) : Promise.resolve();
  }

  close(): Promise<void> {
    this.steps.push("close");
    return Promise.resolve();
  }
}

function link(id: string, network: string, conversation: string): unknown {
  return {
    id,
    endpoints: [
      { network, instance: "one", conversation, agency: "a" },
      { network: "other", instance: "x", conversation: `${id}-there`, agency: "b" },
    ],
  };
}

function delivery(body: string): Delivery {
  return {
    specVersion: "1",
    id: `d-${body}`,
    target: { network: "test", instance: "one", conversation: "room-1", agency: "a" },
    event: {
      specVersion: "1",
      id: `event-${body}`,
      type: "message.created",
      source: { network: "other", instance: "x", conversation: "l1-there" },
      sender: { userId: "u", displayName: "U" },
      content: { body },
      timestamp: new Date().toISOString(),
    },
    senderAgency: { id: "b", name: "B", country: "FR" },
  };
}

describe("startAdapter - the kit runs an adapter's start and stop", () => {
  it("startAdapter - deliveries reach the adapter, which hears of its own linked conversations only", async () => {
    const bus = new MemoryBus();
    await bus.ensureTopology();
    const links = new LinkStore(await bus.keyValue(buckets.links));
    await links.start();
    await links.create(link("l1", "test", "room-1"));
    let adapter: TestAdapter | undefined;
    const running = await startAdapter(
      bus,
      {
        network: "test",
        instance: "one",
        open: (runtime) => Promise.resolve((adapter = new TestAdapter(runtime))),
      },
      log,
    );
    expect(running).toBe(adapter);
    expect(adapter?.seen).toEqual([["room-1"]]);

    await bus.publish(subjects.outbound("test", "one"), encodeJson(delivery("hello")));
    await eventually(
      () => (adapter?.delivered.includes("hello") === true ? true : undefined),
      5000,
      "delivered",
    );

    // A link elsewhere is not this instance's business; one with an endpoint here is.
    await links.create(link("l2", "elsewhere", "room-9"));
    await links.create(link("l3", "test", "room-2"));
    await eventually(() => (adapter?.seen.length === 2 ? true : undefined), 5000, "reconciled");
    expect(adapter?.seen[1]?.sort()).toEqual(["room-1", "room-2"]);

    await running.stop();
    expect(adapter?.steps).toEqual(["afterStart", "close"]);
    links.stop();
  });

  it("startAdapter - an adapter that fails to start is closed, with the runtime, and the error is the adapter's", async () => {
    const bus = new MemoryBus();
    let adapter: TestAdapter | undefined;
    const attempt = startAdapter(
      bus,
      {
        network: "test",
        instance: "one",
        open: (runtime) => Promise.resolve((adapter = new TestAdapter(runtime, true))),
      },
      log,
    );
    await expect(attempt).rejects.toThrow("push refused");
    expect(adapter?.steps).toEqual(["afterStart", "close"]);
    // The runtime is closed too: its deliveries' consumer is gone, so a delivery waits for the next start.
    await bus.publish(subjects.outbound("test", "one"), encodeJson(delivery("later")));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(adapter?.delivered).toEqual([]);
  });

  it("startAdapter - an adapter whose network cannot be reached leaves nothing running", async () => {
    const bus = new MemoryBus();
    const opened: AdapterRuntime[] = [];
    const attempt = startAdapter(
      bus,
      {
        network: "test",
        instance: "one",
        open: (runtime) => {
          opened.push(runtime);
          return Promise.reject(new Error("server refused"));
        },
      },
      log,
    );
    await expect(attempt).rejects.toThrow("server refused");
    expect(opened).toHaveLength(1);
    expect(opened[0]?.closed).toBe(true);
  });
});
