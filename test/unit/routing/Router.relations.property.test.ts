/**
 * The routing core's promise about relations, over 10,000 generated conversations: no event — original, edit,
 * reply, reaction, deletion — reaches a conversation its original's marking was denied to; what acts on a
 * message (edit, reaction, deletion) reaches only conversations that hold it; what is about a marked message
 * carries that marking; only the author edits. Policies, link markings, senders and the order of events are
 * generated; the outcome is read back from the audit trail and the deliveries, as an operator would.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type {
  AuditRecord,
  Delivery,
  Endpoint,
  NormalisedEvent,
  Policy,
  Route,
} from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { PolicyEngine } from "../../../gateway/core/policy/PolicyEngine.js";
import { Router } from "../../../gateway/core/routing/Router.js";
import { DeliveryLedger } from "../../../gateway/core/routing/DeliveryLedger.js";
import { IdentityStore } from "../../../gateway/platform/stores/IdentityStore.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { conversationKey, LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { auditRecordsIn, matrixRoom, stashcatChannel, xmppRoom } from "../../helpers/fixtures.js";

const log = createLogger("silent");
const ENDPOINTS: readonly Endpoint[] = [xmppRoom, stashcatChannel, matrixRoom];
const AGENCIES = ENDPOINTS.map((e) => e.agency);
const MARKINGS = ["DE-VS-NFD", "FR-DR", "EU-RESTRICTED"] as const;
const EQUIVALENCES: [string, string][] = [
  ["DE-VS-NFD", "EU-RESTRICTED"],
  ["FR-DR", "EU-RESTRICTED"],
];
const MARKING_DENIALS = new Set([
  "marking-unknown",
  "marking-conflict",
  "marking-above-route",
  "marking-not-accredited",
]);

function equivalent(a: string, b: string): boolean {
  return a === b || EQUIVALENCES.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
}

type StepKind = "created" | "edited" | "reply" | "reaction" | "deleted";

interface Step {
  from: number;
  sender: number;
  kind: StepKind;
  /** Which earlier step it relates to (modulo how many there are). */
  to: number;
  marking: string | undefined;
  withFile: boolean;
  /** A relation written where its original was (which always holds it), rather than from `from`. */
  whereOriginalIs: boolean;
}

const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });
/** Mostly unmarked, as real traffic is; sometimes a declared marking, rarely an undeclared one. */
const marking: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constantFrom<string>(...MARKINGS) },
  { weight: 1, arbitrary: fc.constant("XX-UNDECLARED") },
);
/** Most agency pairs have a route. */
const mostly = fc.oneof(
  { weight: 4, arbitrary: fc.constant(true) },
  { weight: 1, arbitrary: fc.constant(false) },
);

const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    ceilings: fc.array(optional(fc.constantFrom(...MARKINGS)), { minLength: 3, maxLength: 3 }),
    textOnly: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    routed: fc.array(mostly, { minLength: 3, maxLength: 3 }),
    accredited: fc.array(optional(fc.constantFrom(...MARKINGS)), { minLength: 3, maxLength: 3 }),
    equivalences: fc.subarray(EQUIVALENCES),
  })
  .map(({ ceilings, textOnly, routed, accredited, equivalences }): Policy => {
    const pairs: [number, number][] = [
      [0, 1],
      [0, 2],
      [1, 2],
    ];
    const routes: Route[] = pairs.flatMap(([a, b], i) =>
      routed[i] === true
        ? [
            {
              from: AGENCIES[a] ?? "",
              to: AGENCIES[b] ?? "",
              ...(ceilings[i] === undefined ? {} : { ceiling: ceilings[i] }),
              ...(textOnly[i] === true
                ? { textOnly: true }
                : { attachments: { mediaTypes: ["image/*"], maxBytes: 1_000_000 } }),
            },
          ]
        : [],
    );
    return {
      agencies: [xmppRoom, stashcatChannel, matrixRoom].map((e) => ({
        id: e.agency,
        country: e.network === "matrix" ? "FR" : "DE",
        name: e.agency,
        network: e.network,
        instance: e.instance,
      })) as Policy["agencies"],
      markings: [
        { id: "DE-VS-NFD", country: "DE", label: "VS-NfD", level: "restricted" as const },
        { id: "FR-DR", country: "FR", label: "DR", level: "restricted" as const },
        { id: "EU-RESTRICTED", country: "EU", label: "EU R", level: "restricted" as const },
      ],
      equivalences: equivalences.map(([a, b]) => [a, b] as [string, string]),
      accreditations: ENDPOINTS.flatMap((e, i) => {
        const m = accredited[i];
        return m === undefined ? [] : [{ network: e.network, instance: e.instance, marking: m }];
      }),
      routes,
    };
  });

const stepArb: fc.Arbitrary<Step> = fc.record({
  from: fc.integer({ min: 0, max: 2 }),
  sender: fc.integer({ min: 0, max: 1 }),
  kind: fc.constantFrom<StepKind>("created", "created", "edited", "reply", "reaction", "deleted"),
  to: fc.nat(),
  marking,
  withFile: fc.boolean(),
  whereOriginalIs: fc.boolean(),
});

const scenarioArb = fc.record({
  policy: policyArb,
  linkMarking: optional(fc.constantFrom(...MARKINGS)),
  steps: fc.array(stepArb, { minLength: 2, maxLength: 7 }),
});

/** The events of a scenario: a step that relates to nothing yet becomes a new message. */
function eventsOf(steps: Step[]): NormalisedEvent[] {
  const events: NormalisedEvent[] = [];
  steps.forEach((step, n) => {
    const earlier = events.filter((e) => e.type === "message.created" || e.type === "message.edited");
    const original = earlier[step.to % Math.max(1, earlier.length)];
    const kind = original === undefined ? "created" : step.kind;
    const from =
      (kind !== "created" && step.whereOriginalIs
        ? ENDPOINTS.find((e) => e.conversation === original?.source.conversation)
        : ENDPOINTS[step.from]) ?? xmppRoom;
    const base = {
      specVersion: "1" as const,
      id: `event-${String(n).padStart(4, "0")}-${Math.random().toString(36).slice(2, 10)}`,
      source: { network: from.network, instance: from.instance, conversation: from.conversation },
      sender: { userId: `${from.agency}-user-${String(step.sender)}`, displayName: "Officer" },
      timestamp: new Date().toISOString(),
      ...(step.marking === undefined ? {} : { marking: step.marking }),
    };
    const file = {
      attachments: [
        {
          name: "lage.png",
          mediaType: "image/png",
          size: 10,
          sha256: "0".repeat(64),
          url: "https://f.example/x",
        },
      ],
    };
    const to = original?.id ?? "";
    switch (kind) {
      case "created":
        events.push({
          ...base,
          type: "message.created",
          content: { body: "Lage", ...(step.withFile ? file : {}) },
        });
        break;
      case "reply":
        events.push({
          ...base,
          type: "message.created",
          content: { body: "Antwort" },
          relations: { replyTo: to },
        });
        break;
      case "edited":
        events.push({
          ...base,
          type: "message.edited",
          content: { body: "Korrektur" },
          relations: { replaces: to },
        });
        break;
      case "reaction":
        events.push({
          ...base,
          type: "reaction.added",
          content: { reaction: "👍" },
          relations: { reactsTo: to },
        });
        break;
      case "deleted":
        events.push({ ...base, type: "message.deleted", relations: { redacts: to } });
        break;
    }
  });
  return events;
}

describe("Router - relations safety property", () => {
  it("no edit, reply, reaction or deletion reaches a conversation its original's marking was denied to", async () => {
    const seen = { relations: 0, deliveredRelations: 0, withheldByMarking: 0, carriedMarkings: 0 };
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ({ policy, linkMarking, steps }) => {
        const bus = new MemoryBus();
        await bus.ensureTopology();
        const links = new LinkStore(await bus.keyValue("links"));
        const identities = new IdentityStore(await bus.keyValue("identities"));
        const ledger = new DeliveryLedger(await bus.keyValue("deliveries"));
        await links.start();
        await links.create({
          id: "lage",
          endpoints: [...ENDPOINTS],
          ...(linkMarking === undefined ? {} : { marking: linkMarking }),
        });
        const engine = new PolicyEngine(policy);
        const router = new Router({ bus, links, identities, ledger, policy: () => engine, log });
        const events = eventsOf(steps);
        for (const event of events)
          await router.handle({
            subject: subjects.inbound(event.source),
            data: encodeJson(event),
            headers: {},
            deliveryCount: 1,
            seq: 1,
          });
        links.stop();

        const records: AuditRecord[] = bus.messages(subjects.auditAll).flatMap((m) => auditRecordsIn(m.data));
        const reason = new Map(
          records.map((r) => [`${r.eventId} ${conversationKey(r.target ?? xmppRoom)}`, r.reason]),
        );
        const deliveries = bus
          .messages(subjects.outboundAll)
          .map((m) => JSON.parse(Buffer.from(m.data).toString()) as Delivery)
          .filter((d) => d.event.type !== "notice");
        const byId = new Map(events.map((e) => [e.id, e]));

        /** Every message `event` is about or acts on, through chains of relations. */
        const ancestors = (event: NormalisedEvent): NormalisedEvent[] => {
          const found: NormalisedEvent[] = [];
          const idsOf = (e: NormalisedEvent): string[] => {
            const { replyTo, replaces, reactsTo, redacts } = e.relations ?? {};
            return [replyTo, replaces, reactsTo, redacts].filter((id): id is string => id !== undefined);
          };
          const queue = idsOf(event);
          while (queue.length > 0) {
            const original = byId.get(queue.shift() ?? "");
            if (original === undefined || found.includes(original)) continue;
            found.push(original);
            queue.push(...idsOf(original));
          }
          return found;
        };

        for (const delivery of deliveries) {
          const { event, target } = delivery;
          const there = conversationKey(target);
          const originals = ancestors(event);
          if (originals.length > 0) seen.deliveredRelations++;
          for (const original of originals) {
            // Never where the original's marking was denied.
            const denied = reason.get(`${original.id} ${there}`);
            expect(denied === undefined || !MARKING_DENIALS.has(denied)).toBe(true);
          }
          const acted = byId.get(
            event.relations?.replaces ?? event.relations?.reactsTo ?? event.relations?.redacts ?? "",
          );
          if (acted !== undefined) {
            // Only where the original is: where it was written, or delivered.
            const held =
              conversationKey(acted.source) === there || reason.get(`${acted.id} ${there}`) === "allowed";
            expect(held).toBe(true);
          }
          if (event.type === "message.edited" && acted !== undefined)
            expect(event.sender.userId).toBe(acted.sender.userId);
          // What is about a marked message carries a marking equivalent to it.
          const about = byId.get(
            event.relations?.replaces ?? event.relations?.reactsTo ?? event.relations?.replyTo ?? "",
          );
          const aboutMarking = about === undefined ? undefined : (await ledger.get(about.id))?.marking;
          if (aboutMarking !== undefined) {
            seen.carriedMarkings++;
            const shown = delivery.marking?.original ?? delivery.marking?.id;
            expect(shown).toBeDefined();
            expect(equivalent(shown ?? "", aboutMarking)).toBe(true);
          }
        }
        for (const event of events) if (event.relations !== undefined) seen.relations++;
        for (const r of records) if (r.reason === "relation-withheld") seen.withheldByMarking++;
      }),
      { numRuns: 10_000 },
    );
    // The generator must exercise what the property is about, not only trivial cases.
    expect(seen.relations).toBeGreaterThan(10_000);
    expect(seen.deliveredRelations).toBeGreaterThan(1_000);
    expect(seen.withheldByMarking).toBeGreaterThan(100);
    expect(seen.carriedMarkings).toBeGreaterThan(100);
  });
});
