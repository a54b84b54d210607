/**
 * Two gateways, Germany's and France's, each with its own nats-server, core, policy, audit and admin API,
 * joined by a leafnode: nothing crosses until both admins consent; once they have, each side applies its own
 * policy and audits its own decisions; a release caveat never crosses; a partner cannot speak for an agency
 * its manifest does not give it; either side revoking stops the flow on both within seconds; and a partner
 * away for a while loses nothing.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Endpoint, FederatedEvent, Link, NormalisedEvent, Policy } from "../../../schemas/types.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
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

const xmppOps: Endpoint = { ...xmppRoom, conversation: "einsatz@conference.bpol" };
const tchapOps: Endpoint = { ...tchapRoom, conversation: "!einsatz:tchap" };
const shared = (partner: string, conversation: string, agency: string): Endpoint => ({
  network: "federation",
  instance: partner,
  conversation,
  agency,
});

const dePolicy: Policy = {
  agencies: [
    { id: "bpol", country: "DE", name: "Bundespolizei", network: "xmpp", instance: "bpol" },
    { id: "polizei-ni", country: "DE", name: "Polizei Niedersachsen", network: "stashcat", instance: "ni" },
    {
      id: "dinum-mi",
      country: "FR",
      name: "Ministère de l'Intérieur",
      network: "federation",
      instance: "fr",
    },
  ],
  markings: [
    { id: "DE-VS-NFD", country: "DE", label: "VS-NUR FÜR DEN DIENSTGEBRAUCH", level: "restricted" },
    {
      id: "DE-NUR-DE",
      country: "DE",
      label: "VS-NfD – NUR FÜR DEUTSCHE",
      level: "restricted",
      nationalOnly: true,
    },
    { id: "FR-DR", country: "FR", label: "DIFFUSION RESTREINTE", level: "restricted", kind: "protection" },
  ],
  equivalences: [["DE-VS-NFD", "FR-DR"]],
  accreditations: [
    { network: "xmpp", instance: "bpol", marking: "DE-VS-NFD" },
    { network: "stashcat", instance: "ni", marking: "DE-VS-NFD" },
    { network: "federation", instance: "fr", marking: "FR-DR" },
  ],
  routes: [
    { from: "bpol", to: "polizei-ni", ceiling: "DE-VS-NFD" },
    // Germany releases images to France...
    {
      from: "bpol",
      to: "dinum-mi",
      ceiling: "DE-VS-NFD",
      attachments: { mediaTypes: ["image/*"], maxBytes: 1_000_000 },
    },
    { from: "polizei-ni", to: "dinum-mi", textOnly: true },
  ],
};

const frPolicy: Policy = {
  agencies: [
    { id: "dinum-mi", country: "FR", name: "Ministère de l'Intérieur", network: "matrix", instance: "tchap" },
    { id: "bpol", country: "DE", name: "Bundespolizei", network: "federation", instance: "de" },
    { id: "polizei-ni", country: "DE", name: "Polizei Niedersachsen", network: "federation", instance: "de" },
  ],
  markings: [
    { id: "FR-DR", country: "FR", label: "DIFFUSION RESTREINTE", level: "restricted", kind: "protection" },
    { id: "DE-VS-NFD", country: "DE", label: "VS-NUR FÜR DEN DIENSTGEBRAUCH", level: "restricted" },
  ],
  equivalences: [["FR-DR", "DE-VS-NFD"]],
  accreditations: [
    { network: "matrix", instance: "tchap", marking: "FR-DR" },
    { network: "federation", instance: "de", marking: "DE-VS-NFD" },
  ],
  routes: [
    // ...but France takes no files from the border at all: its own policy, applied on its own side.
    { from: "bpol", to: "dinum-mi", ceiling: "FR-DR", textOnly: true },
    { from: "polizei-ni", to: "dinum-mi", textOnly: true },
  ],
};

const deLinks: Link[] = [
  { id: "lage", endpoints: [xmppRoom, stashcatChannel, shared("fr", "lage", "dinum-mi")] },
  { id: "einsatz", endpoints: [xmppOps, shared("fr", "einsatz", "dinum-mi")] },
];
const frLinks: Link[] = [
  { id: "lage", endpoints: [tchapRoom, shared("de", "lage", "bpol")] },
  { id: "einsatz", endpoints: [tchapOps, shared("de", "einsatz", "bpol")] },
];

const pair = await startGatewayPair(
  { id: "de", country: "DE", policy: dePolicy, links: deLinks },
  { id: "fr", country: "FR", policy: frPolicy, links: frLinks },
);

/** Waits until `adapter` has received `eventId`, and returns what it received. */
async function arrives(adapter: RecordingAdapter, eventId: string, timeoutMs = 15_000) {
  return eventually(() => adapter.of(eventId)[0], timeoutMs, `event ${eventId} at ${adapter.instance}`);
}

describe.skipIf(pair === undefined)("federation - two gateways", () => {
  let de: GatewayUnderTest;
  let fr: GatewayUnderTest;
  let xmpp: RecordingAdapter;
  let stashcat: RecordingAdapter;
  let tchap: RecordingAdapter;

  beforeAll(async () => {
    [de, fr] = pair as [GatewayUnderTest, GatewayUnderTest];
    xmpp = await de.adapter("xmpp", "bpol");
    stashcat = await de.adapter("stashcat", "ni");
    tchap = await fr.adapter("matrix", "tchap");
  }, 60_000);

  afterAll(async () => {
    for (const gateway of [fr, de]) {
      await gateway.stop();
      await gateway.nats.stop();
    }
  });

  const consentBoth = (conversation: string): Promise<void> => consentOnBothSides(de, fr, conversation);

  it("federation - nothing crosses before both gateways consent; one approval leaves it pending on both sides", async () => {
    const before = message(xmppRoom, "Lage 08:00");
    await xmpp.runtime.publish(before);
    await arrives(stashcat, before.id);
    const denied = await eventually(() =>
      de.decisionsOn(before.id).find((r) => r.target?.network === "federation"),
    );
    expect(denied).toMatchObject({ decision: "deny", reason: "not-consented" });

    expect((await de.admin("PUT", "/v1/consents/fr/lage", { approvedBy: "DE duty officer" })).status).toBe(
      200,
    );
    const atFr = await eventually(async () => {
      const seen = await fr.consent("de", "lage");
      return seen?.theirs === undefined ? undefined : seen;
    });
    expect(atFr).toMatchObject({
      state: "pending",
      theirs: { gateway: "de", partner: "fr", state: "granted", approvedBy: "DE duty officer" },
    });
    expect(atFr.ours).toBeUndefined();
    const stillPending = message(xmppRoom, "Lage 08:05");
    await xmpp.runtime.publish(stillPending);
    await arrives(stashcat, stillPending.id);
    expect(
      await eventually(() => de.decisionsOn(stillPending.id).find((r) => r.target?.network === "federation")),
    ).toMatchObject({ reason: "not-consented" });
    // A grant is the partner's to give: France cannot approve on Germany's behalf through its own API.
    expect((await fr.admin("PUT", "/v1/consents/nl/lage", {})).status).toBe(404);
    expect(tchap.of(before.id)).toHaveLength(0);
    expect(tchap.of(stillPending.id)).toHaveLength(0);
    expect(fr.decisionsOn(before.id)).toHaveLength(0);
  }, 60_000);

  it("federation - once both consent, messages flow both ways, each gateway applying and auditing its own policy", async () => {
    await consentBoth("lage");
    const fromBpol = message(xmppRoom, "Kontrollstelle A7 besetzt", { marking: "DE-VS-NFD" });
    await xmpp.runtime.publish(fromBpol);
    const atTchap = await arrives(tchap, fromBpol.id);
    expect(atTchap.delivery.event.source).toMatchObject({
      network: "federation",
      instance: "de",
      conversation: "lage",
    });
    expect(atTchap.delivery.event.source.messageId).toBeUndefined();
    expect(atTchap.delivery.senderAgency).toEqual({ id: "bpol", name: "Bundespolizei", country: "DE" });
    // France writes the marking its own way, by its own equivalence.
    expect(atTchap.delivery.marking).toMatchObject({ id: "FR-DR", original: "DE-VS-NFD" });
    await eventually(() =>
      de.decisionsOn(fromBpol.id).some((r) => r.target?.network === "federation") ? true : undefined,
    );
    await eventually(() => (fr.decisionsOn(fromBpol.id).length > 0 ? true : undefined));
    expect(
      de
        .decisionsOn(fromBpol.id)
        .map((r) => `${r.decision} ${r.target?.network ?? ""}/${r.target?.instance ?? ""}`)
        .sort(),
    ).toEqual(["deliver federation/fr", "deliver stashcat/ni"]);
    expect(
      fr
        .decisionsOn(fromBpol.id)
        .map(
          (r) =>
            `${r.decision} ${r.source.network}/${r.source.instance} ${r.source.agency ?? ""} → ${r.target?.network ?? ""}`,
        ),
    ).toEqual(["deliver federation/de bpol → matrix"]);

    const answer = message(tchapRoom, "Bien reçu, équipe en route", {
      relations: { replyTo: fromBpol.id },
    });
    await tchap.runtime.publish(answer);
    const atXmpp = await arrives(xmpp, answer.id);
    expect(atXmpp.delivery.senderAgency).toEqual({
      id: "dinum-mi",
      name: "Ministère de l'Intérieur",
      country: "FR",
    });
    // The answer finds its message on the German side: the ids are the same on both gateways.
    expect(atXmpp.relations.replyTo).toBe(fromBpol.source.messageId);
    // An answer to a marked message carries its marking: Lower Saxony's text-only route to France takes none.
    expect(
      await eventually(() => de.decisionsOn(answer.id).find((r) => r.target?.network === "stashcat")),
    ).toMatchObject({ decision: "deny", reason: "marking-above-route" });
    expect(fr.decisionsOn(answer.id).map((r) => `${r.decision} ${r.target?.network ?? ""}`)).toEqual([
      "deliver federation",
    ]);
  }, 60_000);

  it("federation - a release caveat never leaves; what Germany releases France may still refuse under its own policy", async () => {
    const national = message(xmppRoom, "Nur für deutsche Stellen", { marking: "DE-NUR-DE" });
    await xmpp.runtime.publish(national);
    expect(
      await eventually(() => de.decisionsOn(national.id).find((r) => r.target?.network === "federation")),
    ).toMatchObject({
      decision: "deny",
      reason: "marking-not-releasable",
    });

    const photo = message(xmppRoom, "Foto der Kontrollstelle", {
      content: {
        body: "Foto der Kontrollstelle",
        attachments: [
          {
            url: "https://files.bpol.example/a.png",
            mediaType: "image/png",
            size: 1000,
            name: "a.png",
            sha256: "a".repeat(64),
          },
        ],
      },
    });
    await xmpp.runtime.publish(photo);
    // Germany's policy releases it; France's refuses files from the border, and says so in its own audit.
    const refused = await eventually(() => fr.decisionsOn(photo.id)[0], 15_000, "France's decision");
    expect(refused).toMatchObject({
      decision: "deny",
      reason: "attachments-not-allowed",
      source: { network: "federation", instance: "de" },
    });
    expect(de.decisionsOn(photo.id).find((r) => r.target?.network === "federation")).toMatchObject({
      decision: "deliver",
    });
    expect(tchap.of(photo.id)).toHaveLength(0);
    // France's refusal is France's to audit: it sends Germany no notice, which Germany would pass on to its
    // rooms as if a French agency had written it.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const ofPhoto = [...xmpp.notices(), ...stashcat.notices()].filter(
      (r) => r.delivery.event.relations?.replyTo === photo.id,
    );
    // Germany's own notice (its route to Lower Saxony takes no files) reaches the sender, and only that.
    expect(ofPhoto.map((r) => `${r.delivery.target.network} ${r.delivery.event.source.network}`)).toEqual([
      "xmpp xmpp",
    ]);

    // Sent after the caveated message, in the same conversation: once it is there, the other would have been too.
    const after = message(xmppRoom, "Nächster Punkt");
    await xmpp.runtime.publish(after);
    await arrives(tchap, after.id);
    expect(tchap.of(national.id)).toHaveLength(0);
    expect(fr.decisionsOn(national.id)).toHaveLength(0);
  }, 60_000);

  it("federation - a partner that names an agency its manifest does not give it is refused, and the refusal is audited", async () => {
    // France's gateway (or whoever sits in its account) claims a German agency.
    const forged: NormalisedEvent = {
      ...message(tchapRoom, "Hier spricht die Bundespolizei"),
      sender: { userId: "@mallory:tchap", displayName: "Bundespolizei Leitstelle", agency: "bpol" },
    };
    const federated: FederatedEvent = {
      specVersion: "1",
      id: `${forged.id}.x`,
      conversation: "lage",
      event: forged,
    };
    // ...and poses as a gateway's own notice, in its own agency's name.
    const fakeNotice: NormalisedEvent = {
      ...message(tchapRoom, "fedgate: this room is moving, write to +33 …"),
      type: "notice",
      sender: { userId: "fedgate", displayName: "fedgate", agency: "dinum-mi" },
    };
    for (const sent of [
      federated,
      { specVersion: "1", id: `${fakeNotice.id}.x`, conversation: "lage", event: fakeNotice },
    ])
      await fr.client?.send(subjects.federationMessage("fr", "de", "event"), encodeJson(sent));
    const refused = await eventually(() => de.decisionsOn(forged.id)[0], 15_000, "Germany's decision");
    expect(refused).toMatchObject({
      decision: "deny",
      reason: "agency-not-in-manifest",
      source: { network: "federation", instance: "fr", agency: "bpol" },
    });
    expect(refused.detail).toContain("does not give it agency bpol");
    const after = message(tchapRoom, "Suite");
    await tchap.runtime.publish(after);
    await arrives(xmpp, after.id);
    expect(xmpp.of(forged.id)).toHaveLength(0);
    expect(stashcat.of(forged.id)).toHaveLength(0);
    expect([...xmpp.of(fakeNotice.id), ...stashcat.of(fakeNotice.id)]).toEqual([]);
  }, 60_000);

  it("federation - either side revoking stops the flow on both sides within 10 s", async () => {
    await consentBoth("einsatz");
    const flowing = message(xmppOps, "Einsatz läuft");
    await xmpp.runtime.publish(flowing);
    await arrives(tchap, flowing.id);

    const revokedAt = Date.now();
    const revoked = await fr.admin("DELETE", "/v1/consents/de/einsatz");
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ state: "revoked", ours: { state: "revoked" } });
    // France stops at once; Germany as soon as France's signed revocation reaches it.
    await eventually(
      async () => ((await de.consent("fr", "einsatz"))?.state === "revoked" ? true : undefined),
      10_000,
      "Germany to see the revocation",
    );
    const cutMs = Date.now() - revokedAt;
    console.log(`federation: revocation seen by the partner gateway after ${String(cutMs)} ms`);
    expect(cutMs).toBeLessThan(10_000);

    const fromDe = message(xmppOps, "Noch jemand da?");
    const fromFr = message(tchapOps, "Toujours là ?");
    await xmpp.runtime.publish(fromDe);
    await tchap.runtime.publish(fromFr);
    expect(
      await eventually(() => de.decisionsOn(fromDe.id).find((r) => r.target?.network === "federation")),
    ).toMatchObject({ reason: "not-consented" });
    expect(
      await eventually(() => fr.decisionsOn(fromFr.id).find((r) => r.target?.network === "federation")),
    ).toMatchObject({ reason: "not-consented" });
    // Still flowing where it may: the other shared conversation is untouched.
    const elsewhere = message(xmppRoom, "Lage unverändert");
    await xmpp.runtime.publish(elsewhere);
    await arrives(tchap, elsewhere.id);
    expect(tchap.of(fromDe.id)).toHaveLength(0);
    expect(xmpp.of(fromFr.id)).toHaveLength(0);
  }, 60_000);

  it("federation - with two core replicas on each side, each message crosses once, in order", async () => {
    const replicas = [await de.replica(), await fr.replica()];
    try {
      const fromDe: string[] = [];
      const fromFr: string[] = [];
      for (let i = 0; i < 30; i++) {
        const german = message(xmppRoom, `Meldung ${String(i)}`);
        const french = message(tchapRoom, `Message ${String(i)}`);
        await xmpp.runtime.publish(german);
        await tchap.runtime.publish(french);
        fromDe.push(german.id);
        fromFr.push(french.id);
      }
      await eventually(
        () => (fromDe.every((id) => tchap.of(id).length > 0) ? true : undefined),
        30_000,
        "Germany's at Tchap",
      );
      await eventually(
        () => (fromFr.every((id) => xmpp.of(id).length > 0) ? true : undefined),
        30_000,
        "France's at XMPP",
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(tchap.received.map((r) => r.delivery.event.id).filter((id) => fromDe.includes(id))).toEqual(
        fromDe,
      );
      expect(xmpp.received.map((r) => r.delivery.event.id).filter((id) => fromFr.includes(id))).toEqual(
        fromFr,
      );
    } finally {
      for (const replica of replicas) await replica.stop();
    }
  }, 90_000);

  it("federation - a partner gateway away for a minute loses nothing: what waited flows in order, once", async () => {
    const sent: string[] = [];
    const downMs = 60_000;
    let returnedAt = 0;
    await fr.nats.restart(async () => {
      const started = Date.now();
      for (let i = 0; i < 60; i++) {
        const event = message(xmppRoom, `während des Ausfalls ${String(i)}`, { id: randomUUID() });
        await xmpp.runtime.publish(event);
        sent.push(event.id);
        await new Promise((resolve) => setTimeout(resolve, (downMs - (Date.now() - started)) / (60 - i)));
      }
      returnedAt = Date.now();
    });
    await eventually(
      () => (sent.every((id) => tchap.of(id).length > 0) ? true : undefined),
      60_000,
      "every message at Tchap",
    );
    console.log(
      `federation: ${String(sent.length)} messages sent during a ${String(downMs / 1000)} s partner outage arrived ${String(Date.now() - returnedAt)} ms after it ended`,
    );
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const arrived = tchap.received.map((r) => r.delivery.event.id).filter((id) => sent.includes(id));
    expect(arrived).toEqual(sent);
  }, 240_000);
});
