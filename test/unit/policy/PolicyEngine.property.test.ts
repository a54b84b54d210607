import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type {
  Accreditation,
  Agency,
  Attachment,
  Endpoint,
  NormalisedEvent,
  Policy,
  Route,
} from "../../../schemas/types.js";
import { PolicyEngine, type RouteQuery } from "../../../gateway/core/policy/PolicyEngine.js";

const COUNTRIES = ["DE", "FR", "EU", "NL"] as const;
const NETWORKS = ["xmpp", "matrix"] as const;
const INSTANCES = ["i0", "i1", "i2"] as const;
const ALLOW_LISTS = ["image/*", "application/pdf", "text/plain", "video/*"] as const;
const MEDIA_TYPES = [
  "image/png",
  "IMAGE/JPEG",
  "application/pdf",
  "text/plain; charset=utf-8",
  "video/mp4",
  "application/zip",
] as const;
const UNDECLARED = "XX-UNDECLARED";
const GHOST = "ghost";

// ---------------------------------------------------------------------------------------------------------
// Reference: the rules read straight off the policy arrays, sharing no code with the engine.

function findAgency(policy: Policy, id: string): Agency | undefined {
  return policy.agencies.find((a) => a.id === id);
}

function routeFor(policy: Policy, from: string, to: string): Route | undefined {
  return policy.routes.find(
    (r) => (r.from === from && r.to === to) || (r.bidirectional !== false && r.from === to && r.to === from),
  );
}

function equivalent(policy: Policy, a: string, b: string): boolean {
  return (
    a === b || (policy.equivalences ?? []).some(([x, y]) => (x === a && y === b) || (x === b && y === a))
  );
}

function referenceAllows(policy: Policy, q: RouteQuery): boolean {
  const senderId = q.event.sender.agency ?? q.source.agency;
  const sender = findAgency(policy, senderId);
  const owner = findAgency(policy, q.source.agency);
  const receiver = findAgency(policy, q.target.agency);
  if (sender === undefined || owner === undefined || receiver === undefined) return false;
  if (senderId !== q.source.agency) return false;
  const on = (a: Agency, at: { network: string; instance: string }): boolean =>
    a.network === at.network && a.instance === at.instance;
  if (!on(owner, q.event.source) || !on(owner, q.source) || !on(receiver, q.target)) return false;

  const route = routeFor(policy, sender.id, receiver.id);
  if (route === undefined) return false;

  const declared = (id: string): boolean => (policy.markings ?? []).some((m) => m.id === id);
  const { marking } = q.event;
  const { linkMarking } = q;
  if (marking !== undefined && !declared(marking)) return false;
  if (linkMarking !== undefined && !declared(linkMarking)) return false;
  let effective: string | undefined;
  if (marking !== undefined && linkMarking !== undefined) {
    if (!equivalent(policy, marking, linkMarking)) return false;
    effective = marking;
  } else {
    effective = marking ?? linkMarking;
  }

  const present = new Set([effective, linkMarking].filter((x): x is string => x !== undefined));
  // Release caveats bind each marking present, whatever is equivalent to it.
  for (const m of present) {
    const declaredMarking = (policy.markings ?? []).find((d) => d.id === m);
    if (declaredMarking === undefined || declaredMarking.country === receiver.country) continue;
    if (declaredMarking.nationalOnly === true) return false;
    if (
      declaredMarking.releasableTo !== undefined &&
      !declaredMarking.releasableTo.includes(receiver.country)
    )
      return false;
  }

  // Equivalence is not transitive: the ceiling and accreditations must cover each marking present.
  for (const m of present) {
    if (route.ceiling === undefined || !equivalent(policy, m, route.ceiling)) return false;
    const accredited = (a: Agency): boolean =>
      (policy.accreditations ?? []).some(
        (acc) =>
          acc.network === a.network && acc.instance === a.instance && equivalent(policy, acc.marking, m),
      );
    if (!accredited(owner) || !accredited(receiver)) return false;
  }

  const attachments = q.event.content?.attachments ?? [];
  if (attachments.length > 0) {
    const rule = route.attachments;
    if (route.textOnly === true || rule === undefined) return false;
    for (const a of attachments) {
      const type = (a.mediaType.split(";")[0] ?? "").trim().toLowerCase();
      const listed = rule.mediaTypes.some(
        (t) => t === type || (t.endsWith("/*") && type.startsWith(t.slice(0, -1))),
      );
      if (!listed || a.size > rule.maxBytes) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// Generators.

const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });

const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    agencies: fc.array(
      fc.record({
        country: fc.constantFrom(...COUNTRIES),
        network: fc.constantFrom(...NETWORKS),
        instance: fc.constantFrom(...INSTANCES),
      }),
      { minLength: 2, maxLength: 8 },
    ),
    markingCountries: fc.array(fc.constantFrom(...COUNTRIES), { maxLength: 4 }),
  })
  .chain(({ agencies, markingCountries }) => {
    const agencyIds = agencies.map((_, i) => `a${i}`);
    const markingIds = markingCountries.map((c, i) => `${c}-M${i}`);
    const agencyId = fc.constantFrom(...agencyIds);
    const markingId =
      markingIds.length === 0 ? fc.constant(undefined) : optional(fc.constantFrom(...markingIds));
    const pairs =
      markingIds.length < 2
        ? fc.constant<[string, string][]>([])
        : fc.array(
            fc
              .tuple(fc.constantFrom(...markingIds), fc.constantFrom(...markingIds))
              .filter(([a, b]) => a !== b),
            { maxLength: 6 },
          );
    const accreditations =
      markingIds.length === 0
        ? fc.constant<Accreditation[]>([])
        : fc.array(
            fc.record({
              network: fc.constantFrom(...NETWORKS),
              instance: fc.constantFrom(...INSTANCES),
              marking: fc.constantFrom(...markingIds),
            }),
            { maxLength: 8 },
          );
    const route = fc.record(
      {
        from: agencyId,
        to: agencyId,
        bidirectional: optional(fc.boolean()),
        ceiling: markingId,
        textOnly: optional(fc.boolean()),
        attachments: optional(
          fc.record({
            mediaTypes: fc.subarray([...ALLOW_LISTS]),
            maxBytes: fc.oneof(
              { arbitrary: fc.constantFrom(0, 10, 1000), weight: 3 },
              { arbitrary: fc.integer({ min: 0, max: 1000 }), weight: 1 },
            ),
          }),
        ),
      },
      { requiredKeys: ["from", "to"] },
    );
    // Most markings carry no release caveat; some are national-only or releasable to a few countries.
    const caveat = fc.oneof(
      { arbitrary: fc.constant({}), weight: 3 },
      { arbitrary: fc.constant({ nationalOnly: true }), weight: 1 },
      { arbitrary: fc.subarray([...COUNTRIES]).map((releasableTo) => ({ releasableTo })), weight: 1 },
    );
    return fc
      .record({
        equivalences: pairs,
        accreditations,
        routes: fc.array(route, { maxLength: 14 }),
        caveats: fc.array(caveat, { minLength: markingIds.length, maxLength: markingIds.length }),
      })
      .map(({ equivalences, accreditations, routes, caveats }): Policy => {
        // The engine rejects two routes for one direction, so keep only the first of each.
        const taken = new Set<string>();
        const kept = routes.filter((r) => {
          const directions = [`${r.from}>${r.to}`];
          if (r.bidirectional !== false) directions.push(`${r.to}>${r.from}`);
          if (directions.some((d) => taken.has(d))) return false;
          for (const d of directions) taken.add(d);
          return true;
        });
        const [first, ...rest] = agencies.map((a, i): Agency => ({ id: `a${i}`, name: `Agency ${i}`, ...a }));
        if (first === undefined) throw new Error("at least two agencies are generated");
        return {
          agencies: [first, ...rest],
          markings: markingIds.map((id, i) => ({
            id,
            country: markingCountries[i] ?? "DE",
            label: `Label ${id}`,
            level: "restricted" as const,
            ...caveats[i],
          })),
          equivalences,
          accreditations,
          // Strip undefined keys so the policy looks like parsed YAML.
          routes: kept.map((r) => JSON.parse(JSON.stringify(r)) as Route),
        };
      });
  });

function queryArb(policy: Policy): fc.Arbitrary<RouteQuery> {
  const ids = policy.agencies.map((a) => a.id);
  const markingIds = (policy.markings ?? []).map((m) => m.id);
  const agencyId = fc.oneof(
    { arbitrary: fc.constantFrom(...ids), weight: 12 },
    { arbitrary: fc.constant(GHOST), weight: 1 },
  );
  // Mostly pairs a route connects, so that deliveries are common enough to test.
  const routed = policy.routes.map((r) => [r.from, r.to] as const);
  const pair = fc.oneof(
    { arbitrary: fc.tuple(agencyId, agencyId), weight: 1 },
    ...(routed.length === 0
      ? []
      : [
          {
            arbitrary: fc
              .tuple(fc.constantFrom(...routed), fc.boolean())
              .map(([[a, b], flip]) => (flip ? ([b, a] as const) : ([a, b] as const))),
            weight: 4,
          },
        ]),
  );
  const declaredMarking = markingIds.length === 0 ? fc.constant(UNDECLARED) : fc.constantFrom(...markingIds);
  const marking = (unmarked: number): fc.Arbitrary<string | undefined> =>
    fc.oneof(
      { arbitrary: fc.constant(undefined), weight: unmarked },
      { arbitrary: declaredMarking, weight: 8 },
      { arbitrary: fc.constant(UNDECLARED), weight: 1 },
    );
  const place = (agency: string): fc.Arbitrary<{ network: string; instance: string }> => {
    const declared = policy.agencies.find((a) => a.id === agency);
    const random = fc.record({
      network: fc.constantFrom(...NETWORKS),
      instance: fc.constantFrom(...INSTANCES),
    });
    return declared === undefined
      ? random
      : fc.oneof(
          { arbitrary: fc.constant({ network: declared.network, instance: declared.instance }), weight: 10 },
          { arbitrary: random, weight: 1 },
        );
  };
  const attachment: fc.Arbitrary<Attachment> = fc.record({
    name: fc.constant("file"),
    mediaType: fc.constantFrom(...MEDIA_TYPES),
    // Mostly on either side of the generated limits, where an off-by-one would show.
    size: fc.oneof(
      { arbitrary: fc.constantFrom(0, 1, 10, 11, 1000, 1001), weight: 3 },
      { arbitrary: fc.integer({ min: 0, max: 1200 }), weight: 1 },
    ),
    sha256: fc.constant("0".repeat(64)),
    url: fc.constant("https://files.example/x"),
  });

  return pair.chain(([from, to]) =>
    fc
      .record({
        sourcePlace: place(from),
        eventPlace: fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 10 },
          { arbitrary: place(from), weight: 1 },
        ),
        targetPlace: place(to),
        sender: fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 6 },
          { arbitrary: fc.constant(from), weight: 3 },
          { arbitrary: agencyId, weight: 1 },
        ),
        markings: marking(6).chain((m) =>
          fc.record({
            marking: fc.constant(m),
            // Often the same marking, so that event and link markings combine past the conflict check.
            linkMarking: fc.oneof(
              { arbitrary: fc.constant(m), weight: 1 },
              { arbitrary: marking(4), weight: 1 },
            ),
          }),
        ),
        attachments: fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 2 },
          { arbitrary: fc.array(attachment, { maxLength: 3 }), weight: 1 },
        ),
      })
      .map(({ sourcePlace, eventPlace, targetPlace, sender, markings, attachments }): RouteQuery => {
        const { marking: m, linkMarking } = markings;
        const source: Endpoint = { ...sourcePlace, conversation: "src", agency: from };
        const target: Endpoint = { ...targetPlace, conversation: "dst", agency: to };
        const at = eventPlace ?? sourcePlace;
        const event: NormalisedEvent = {
          specVersion: "1",
          id: "evt-00000001",
          type: "message.created",
          source: { ...at, conversation: "src" },
          sender: sender === undefined ? { userId: "u" } : { userId: "u", agency: sender },
          content: attachments === undefined ? { body: "x" } : { body: "x", attachments },
          timestamp: "2025-01-01T00:00:00Z",
          ...(m === undefined ? {} : { marking: m }),
        };
        return { event, source, target, ...(linkMarking === undefined ? {} : { linkMarking }) };
      }),
  );
}

const scenarioArb = policyArb.chain((policy) =>
  fc.record({
    policy: fc.constant(policy),
    queries: fc.array(queryArb(policy), { minLength: 1, maxLength: 8 }),
  }),
);

// ---------------------------------------------------------------------------------------------------------

describe("PolicyEngine - safety property", () => {
  it("delivers only what the policy permits, and everything it permits", () => {
    let deliveries = 0;
    let markedDeliveries = 0;
    let combinedDeliveries = 0;
    let denials = 0;
    fc.assert(
      fc.property(scenarioArb, ({ policy, queries }) => {
        const engine = new PolicyEngine(policy);
        for (const q of queries) {
          const verdict = engine.decide(q);
          const allowed = referenceAllows(policy, q);
          const senderId = q.event.sender.agency ?? q.source.agency;

          // Safety: deliver only if route, marking and attachments all allow it.
          if (verdict.decision === "deliver") expect(allowed).toBe(true);
          // No route in this direction: never delivered.
          if (routeFor(policy, senderId, q.target.agency) === undefined)
            expect(verdict.decision).toBe("deny");
          // The engine is not stricter than the rules either.
          expect(verdict.decision).toBe(allowed ? "deliver" : "deny");

          if (verdict.decision === "deliver") {
            deliveries++;
            const effective = verdict.effectiveMarking;
            if (effective === undefined) {
              expect(verdict.marking).toBeUndefined();
            } else {
              markedDeliveries++;
              if (
                q.linkMarking !== undefined &&
                q.linkMarking !== q.event.marking &&
                q.event.marking !== undefined
              ) {
                combinedDeliveries++;
              }
              // Shown either as it is, or as a declared equivalent of the target agency's country.
              const shown = verdict.marking;
              expect(shown).toBeDefined();
              if (shown !== undefined && shown.id !== effective) {
                expect(shown.original).toBe(effective);
                expect(equivalent(policy, shown.id, effective)).toBe(true);
                const country = policy.markings?.find((m) => m.id === shown.id)?.country;
                expect(country).toBe(findAgency(policy, q.target.agency)?.country);
              }
            }
          } else {
            denials++;
          }
        }
      }),
      { numRuns: 1000 },
    );
    // Guard against a generator that only ever produces denials.
    expect(deliveries).toBeGreaterThan(200);
    expect(markedDeliveries).toBeGreaterThan(20);
    expect(combinedDeliveries).toBeGreaterThan(0);
    expect(denials).toBeGreaterThan(200);
  });
});
