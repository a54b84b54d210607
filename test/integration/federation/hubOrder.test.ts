/**
 * One order per shared conversation across gateways. Germany's gateway owns the conversation and orders it;
 * France's follows (its link says `orderedBy: de`). France bridges the conversation into two networks of its
 * own, Tchap and the Gendarmerie's XMPP, so without a hub the two sides would each see their own messages first.
 * People write on both sides at once: Stashcat in Germany and the Gendarmerie's room in France, who wrote none
 * of it, see one and the same order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Endpoint, Link, Policy } from "../../../schemas/types.js";
import { eventually, message } from "../../helpers/fixtures.js";
import {
  consentOnBothSides,
  type GatewayUnderTest,
  stashcatChannel,
  startGatewayPair,
  tchapRoom,
  xmppRoom,
} from "../../helpers/federation.js";
import type { RecordingAdapter } from "../../helpers/RecordingAdapter.js";

const gendarmerieRoom: Endpoint = {
  network: "xmpp",
  instance: "gn",
  conversation: "lage@conference.gn",
  agency: "gn",
};
const shared = (partner: string, agency: string): Endpoint => ({
  network: "federation",
  instance: partner,
  conversation: "lage",
  agency,
});

const agency = (id: string, country: string, network: string, instance: string) => ({
  id,
  country,
  name: id,
  network,
  instance,
});
const dePolicy: Policy = {
  agencies: [
    agency("bpol", "DE", "xmpp", "bpol"),
    agency("polizei-ni", "DE", "stashcat", "ni"),
    agency("dinum-mi", "FR", "federation", "fr"),
  ],
  routes: [
    { from: "bpol", to: "polizei-ni" },
    { from: "bpol", to: "dinum-mi" },
    { from: "polizei-ni", to: "dinum-mi" },
  ],
};
const frPolicy: Policy = {
  agencies: [
    agency("dinum-mi", "FR", "matrix", "tchap"),
    agency("gn", "FR", "xmpp", "gn"),
    agency("bpol", "DE", "federation", "de"),
    agency("polizei-ni", "DE", "federation", "de"),
  ],
  routes: [
    { from: "dinum-mi", to: "gn" },
    { from: "bpol", to: "dinum-mi" },
    { from: "bpol", to: "gn" },
    { from: "polizei-ni", to: "dinum-mi" },
    { from: "polizei-ni", to: "gn" },
  ],
};
const deLinks: Link[] = [{ id: "lage", endpoints: [xmppRoom, stashcatChannel, shared("fr", "dinum-mi")] }];
const frLinks: Link[] = [
  { id: "lage", orderedBy: "de", endpoints: [tchapRoom, gendarmerieRoom, shared("de", "bpol")] },
];

const pair = await startGatewayPair(
  { id: "de", country: "DE", policy: dePolicy, links: deLinks },
  {
    id: "fr",
    country: "FR",
    policy: frPolicy,
    links: frLinks,
    manifestAgencies: [
      { id: "dinum-mi", name: "dinum-mi", country: "FR" },
      { id: "gn", name: "gn", country: "FR" },
    ],
  },
);

describe.skipIf(pair === undefined)("federation - the owning gateway orders a shared conversation", () => {
  let de: GatewayUnderTest;
  let fr: GatewayUnderTest;
  let xmpp: RecordingAdapter;
  let stashcat: RecordingAdapter;
  let tchap: RecordingAdapter;
  let gendarmerie: RecordingAdapter;

  beforeAll(async () => {
    [de, fr] = pair as [GatewayUnderTest, GatewayUnderTest];
    xmpp = await de.adapter("xmpp", "bpol");
    stashcat = await de.adapter("stashcat", "ni");
    tchap = await fr.adapter("matrix", "tchap");
    gendarmerie = await fr.adapter("xmpp", "gn");
    await consentOnBothSides(de, fr, "lage");
  }, 60_000);

  afterAll(async () => {
    for (const gateway of [fr, de]) {
      await gateway.stop();
      await gateway.nats.stop();
    }
  });

  const idsAt = (adapter: RecordingAdapter, among: ReadonlySet<string>): string[] =>
    adapter.received.map((r) => r.delivery.event.id).filter((id) => among.has(id));

  it("federation - both sides writing at once: every network that wrote none of it sees the hub's one order, each message once", async () => {
    const german: string[] = [];
    const french: string[] = [];
    for (let i = 0; i < 25; i++) {
      const fromDe = message(xmppRoom, `Meldung ${String(i)}`);
      const fromFr = message(tchapRoom, `Message ${String(i)}`);
      german.push(fromDe.id);
      french.push(fromFr.id);
      await Promise.all([xmpp.runtime.publish(fromDe), tchap.runtime.publish(fromFr)]);
    }
    const all = new Set([...german, ...french]);
    await eventually(
      () => (idsAt(stashcat, all).length >= all.size ? true : undefined),
      30_000,
      "all at Stashcat",
    );
    await eventually(
      () => (idsAt(gendarmerie, all).length >= all.size ? true : undefined),
      30_000,
      "all at the Gendarmerie",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const atStashcat = idsAt(stashcat, all);
    const atGendarmerie = idsAt(gendarmerie, all);
    expect(new Set(atStashcat).size).toBe(all.size);
    expect(atStashcat).toHaveLength(all.size);
    expect(atGendarmerie).toHaveLength(all.size);
    expect(atGendarmerie).toEqual(atStashcat);
    // Each writer's own messages keep their order everywhere, and nobody gets their own back.
    expect(atStashcat.filter((id) => french.includes(id))).toEqual(french);
    expect(idsAt(tchap, new Set(german))).toEqual(german);
    expect(idsAt(xmpp, new Set(french))).toEqual(french);
    expect(idsAt(tchap, new Set(french))).toEqual([]);
    expect(idsAt(xmpp, new Set(german))).toEqual([]);
  }, 90_000);

  it("federation - the hub away, and the follower's core replaced meanwhile: what France's networks wrote still reaches each of them, once, and Germany once it is back", async () => {
    const written: string[] = [];
    let heldFor = 0;
    await de.nats.restart(async () => {
      // A second core takes over while the first stops: what the first held is in the bucket, not in memory.
      const replica = await fr.replica();
      const started = Date.now();
      for (let i = 0; i < 3; i++) {
        const event = message(tchapRoom, `Pendant la coupure ${String(i)}`);
        written.push(event.id);
        await tchap.runtime.publish(event);
      }
      await fr.service?.stop({ closeBus: true });
      fr.service = replica;
      await eventually(
        () => (written.every((id) => gendarmerie.of(id).length > 0) ? true : undefined),
        30_000,
        "France's messages at the Gendarmerie while the hub is away",
      );
      heldFor = Date.now() - started;
    });
    // Held for the hub's order until federation.orderWaitMs (5 s by default) ran out.
    expect(heldFor).toBeGreaterThanOrEqual(5000);
    expect(idsAt(gendarmerie, new Set(written))).toEqual(written);
    await eventually(
      () => (written.every((id) => stashcat.of(id).length > 0) ? true : undefined),
      60_000,
      "France's messages at Stashcat once the hub is back",
    );
    // The hub returns them in its order too, late: nothing is delivered twice for it.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(idsAt(stashcat, new Set(written))).toEqual(written);
    expect(idsAt(gendarmerie, new Set(written))).toEqual(written);
    expect(idsAt(tchap, new Set(written))).toEqual([]);
  }, 120_000);
});
