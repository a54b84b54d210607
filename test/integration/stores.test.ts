/**
 * The stores against a real nats-server, with the ids native input can hold: a key is a NATS subject, and
 * nats-server closes a connection whose control line (which carries the subject) is too long.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../schemas/contract/topology.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { createLogger } from "../../gateway/platform/log.js";
import { IdentityStore } from "../../gateway/platform/stores/IdentityStore.js";
import { MessageMap } from "../../gateway/platform/stores/MessageMap.js";
import { startNatsOrSkip } from "../helpers/nats.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined)("stores - keys built from native input", () => {
  let bus: JetStreamBus;

  beforeAll(async () => {
    if (nats === undefined) return;
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await bus.ensureTopology();
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await bus.close();
    await nats.stop();
  });

  it("stores - a 4,000-character native id is mapped and found, and the connection survives", async () => {
    const messages = new MessageMap(await bus.keyValue(buckets.messages));
    const room = { network: "matrix", instance: "tchap", conversation: `!${"r".repeat(500)}:tchap.example` };
    const poison = `$${"x".repeat(4000)}`;
    const alias = `$${"y".repeat(4000)}`;
    await messages.record("event-poison-1", room, poison, [alias]);
    expect(await messages.eventId(room, poison)).toBe("event-poison-1");
    expect(await messages.eventId(room, alias)).toBe("event-poison-1");
    expect(await messages.nativeId("event-poison-1", room)).toBe(poison);
    // Two long ids that share their first 4,000 characters are still two keys.
    await messages.record("event-poison-2", room, `${poison}z`);
    expect(await messages.eventId(room, `${poison}z`)).toBe("event-poison-2");
    expect(await messages.eventId(room, poison)).toBe("event-poison-1");
    // The same connection still publishes.
    const ack = await bus.publish(subjects.outbound("matrix", "tchap"), Buffer.from("{}"));
    expect(ack.duplicate).toBe(false);
  });

  it("stores - a puppet with a very long user id is recorded and known as a puppet on every replica", async () => {
    const kv = await bus.keyValue(buckets.identities);
    const store = new IdentityStore(kv);
    await store.start();
    const remote = { network: "xmpp", instance: "bpol", userId: `${"w".repeat(1000)}@bpol.example` };
    const puppet = {
      network: "matrix",
      instance: "tchap",
      userId: `@fedgate_${"w".repeat(3000)}:tchap.example`,
    };
    await store.record(remote, puppet);
    expect(await store.remoteFor(puppet)).toEqual(remote);
    expect(await store.puppetFor(remote, "matrix", "tchap")).toBe(puppet.userId);
    expect(store.isPuppet(puppet)).toBe(true);
    const other = new IdentityStore(kv);
    await other.start();
    expect(other.isPuppet(puppet)).toBe(true);
    expect(other.isPuppet({ ...puppet, userId: `${puppet.userId}x` })).toBe(false);
    store.stop();
    other.stop();
  });

  it("stores - a key written again while the bucket's keys are listed is listed at most once", async () => {
    const kv = await bus.keyValue("fedgate_test_listing", { ttlMs: 60_000 });
    for (const name of ["a", "b", "c"]) await kv.put(`replica.${name}`, new Uint8Array([1]));
    // The core counts live replicas by their heartbeat keys, each written again every second or so.
    const listing = { done: false };
    const writer = (async () => {
      for (let i = 0; !listing.done; i++)
        await kv.put(`replica.${"abc"[i % 3] ?? "a"}`, new Uint8Array([i % 256]));
    })();
    const counts = new Set<number>();
    // 200 listings, or as many as 10 s allow on a busy machine: the writer keeps the server busy too.
    const until = Date.now() + 10_000;
    for (let i = 0; i < 200 && Date.now() < until; i++) counts.add((await kv.keys("replica.>")).length);
    listing.done = true;
    await writer;
    // Never more than there are; a listing that overlaps a rewrite can miss that key (NATS lists the latest
    // message per key as the stream stands when each is read), which no one counts on.
    expect(Math.max(...counts)).toBe(3);
  });
});
