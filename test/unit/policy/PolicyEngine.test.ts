import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Attachment, Endpoint, NormalisedEvent, Policy } from "../../../schemas/types.js";
import { ConfigError } from "../../../schemas/contract/errors.js";
import { PolicyEngine, type RouteQuery, type Verdict } from "../../../gateway/core/policy/PolicyEngine.js";
import { scratchDir } from "../../helpers/scratchDir.js";

const examplePolicy = fileURLToPath(new URL("../../../schemas/examples/policy.yaml", import.meta.url));

/**
 * de1 and de2 are German, fr French, eu an EU body; un is on an unaccredited instance.
 * DE≡EU and FR≡EU are declared, DE≡FR is not.
 */
function basePolicy(): Policy {
  return {
    agencies: [
      { id: "de1", country: "DE", name: "Bundespolizei", network: "xmpp", instance: "de1" },
      { id: "de2", country: "DE", name: "Polizei Niedersachsen", network: "stashcat", instance: "de2" },
      { id: "fr", country: "FR", name: "Ministère de l'Intérieur", network: "matrix", instance: "fr" },
      { id: "eu", country: "EU", name: "Europol", network: "xmpp", instance: "eu" },
      { id: "un", country: "DE", name: "Zoll", network: "xmpp", instance: "un" },
    ],
    markings: [
      { id: "DE-VS-NFD", country: "DE", label: "VS-NUR FÜR DEN DIENSTGEBRAUCH", level: "restricted" },
      { id: "FR-DR", country: "FR", label: "DIFFUSION RESTREINTE", level: "restricted", kind: "protection" },
      { id: "EU-RESTRICTED", country: "EU", label: "RESTREINT UE/EU RESTRICTED", level: "restricted" },
      { id: "NL-DEPV", country: "NL", label: "DEPARTEMENTAAL VERTROUWELIJK", level: "restricted" },
    ],
    equivalences: [
      ["DE-VS-NFD", "EU-RESTRICTED"],
      ["FR-DR", "EU-RESTRICTED"],
    ],
    accreditations: [
      { network: "xmpp", instance: "de1", marking: "DE-VS-NFD" },
      { network: "stashcat", instance: "de2", marking: "EU-RESTRICTED" },
      { network: "matrix", instance: "fr", marking: "FR-DR" },
      { network: "xmpp", instance: "eu", marking: "EU-RESTRICTED" },
    ],
    routes: [
      {
        from: "de1",
        to: "de2",
        ceiling: "DE-VS-NFD",
        attachments: { mediaTypes: ["image/*", "application/pdf"], maxBytes: 1000 },
      },
      { from: "de1", to: "fr", ceiling: "DE-VS-NFD" },
      { from: "fr", to: "eu", ceiling: "EU-RESTRICTED", textOnly: true },
      { from: "de1", to: "un", ceiling: "DE-VS-NFD" },
      { from: "de2", to: "eu", bidirectional: false },
      { from: "de1", to: "de1", ceiling: "DE-VS-NFD" },
    ],
  };
}

const engine = new PolicyEngine(basePolicy(), "base.yaml");

function endpoint(agency: string, conversation = `room-${agency}`): Endpoint {
  const declared = engine.agency(agency);
  return {
    network: declared?.network ?? "xmpp",
    instance: declared?.instance ?? "nowhere",
    conversation,
    agency,
  };
}

function attachment(mediaType: string, size: number): Attachment {
  return { name: "file", mediaType, size, sha256: "0".repeat(64), url: "https://files.example/a" };
}

interface Ask {
  from: string;
  to: string;
  sender?: string;
  marking?: string;
  linkMarking?: string;
  attachments?: Attachment[];
}

function query({ from, to, sender, marking, linkMarking, attachments }: Ask): RouteQuery {
  const source = endpoint(from);
  const event: NormalisedEvent = {
    specVersion: "1",
    id: "evt-00000001",
    type: "message.created",
    source: { network: source.network, instance: source.instance, conversation: source.conversation },
    sender: sender === undefined ? { userId: "alice" } : { userId: "alice", agency: sender },
    content: attachments === undefined ? { body: "Lagebild 14:00" } : { body: "Foto", attachments },
    timestamp: "2025-01-01T12:00:00Z",
    ...(marking === undefined ? {} : { marking }),
  };
  return { event, source, target: endpoint(to), ...(linkMarking === undefined ? {} : { linkMarking }) };
}

function decide(ask: Ask, on: PolicyEngine = engine): Verdict {
  return on.decide(query(ask));
}

function denied(verdict: Verdict): Extract<Verdict, { decision: "deny" }> {
  if (verdict.decision !== "deny") throw new Error(`expected a denial, got ${JSON.stringify(verdict)}`);
  return verdict;
}

function delivered(verdict: Verdict): Extract<Verdict, { decision: "deliver" }> {
  if (verdict.decision !== "deliver") throw new Error(`expected a delivery, got ${JSON.stringify(verdict)}`);
  return verdict;
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

describe("PolicyEngine - agencies", () => {
  it("looks up declared agencies", () => {
    expect(engine.agency("fr")?.name).toBe("Ministère de l'Intérieur");
    expect(engine.agency("nobody")).toBeUndefined();
  });

  it("denies a sender agency that is not declared", () => {
    const verdict = denied(decide({ from: "de1", to: "de2", sender: "ghost" }));
    expect(verdict.reason).toBe("agency-unknown");
    expect(verdict.detail).toContain("ghost");
  });

  it("denies a source endpoint owned by an undeclared agency", () => {
    expect(denied(decide({ from: "ghost", to: "de2" })).reason).toBe("agency-unknown");
  });

  it("denies a target endpoint owned by an undeclared agency", () => {
    const verdict = denied(decide({ from: "de1", to: "ghost" }));
    expect(verdict.reason).toBe("agency-unknown");
    expect(verdict.detail).toContain("ghost");
  });

  it("denies a sender agency that does not own the source endpoint", () => {
    const verdict = denied(decide({ from: "de1", to: "de2", sender: "de2" }));
    expect(verdict.reason).toBe("agency-not-on-network");
    expect(verdict.detail).toContain("de2");
  });

  it("accepts an explicit sender agency that owns the source endpoint", () => {
    expect(decide({ from: "de1", to: "de2", sender: "de1" }).decision).toBe("deliver");
  });

  it("denies an event from an instance other than the source agency's", () => {
    const q = query({ from: "de1", to: "de2" });
    q.event.source.instance = "other";
    const verdict = denied(engine.decide(q));
    expect(verdict.reason).toBe("agency-not-on-network");
    expect(verdict.detail).toContain("xmpp/de1");
  });

  it("denies a source endpoint on another network than its agency's", () => {
    const q = query({ from: "de1", to: "de2" });
    q.source.network = "matrix";
    expect(denied(engine.decide(q)).reason).toBe("agency-not-on-network");
  });

  it("denies a target endpoint on another instance than its agency's", () => {
    const q = query({ from: "de1", to: "de2" });
    q.target.instance = "de1";
    const verdict = denied(engine.decide(q));
    expect(verdict.reason).toBe("agency-not-on-network");
    expect(verdict.detail).toContain("stashcat/de2");
  });
});

describe("PolicyEngine - routes", () => {
  it("delivers along a route with both agencies as AgencyRefs", () => {
    const verdict = delivered(decide({ from: "de1", to: "de2" }));
    expect(verdict).toEqual({
      decision: "deliver",
      reason: "allowed",
      senderAgency: { id: "de1", name: "Bundespolizei", country: "DE" },
      targetAgency: { id: "de2", name: "Polizei Niedersachsen", country: "DE" },
    });
  });

  it("uses a route in reverse when bidirectional is left at its default", () => {
    expect(decide({ from: "de2", to: "de1" }).decision).toBe("deliver");
  });

  it("uses a route with bidirectional false in its own direction only", () => {
    expect(decide({ from: "de2", to: "eu" }).decision).toBe("deliver");
    const verdict = denied(decide({ from: "eu", to: "de2" }));
    expect(verdict.reason).toBe("no-route");
    expect(verdict.detail).toBe("No route allows eu to send to de2.");
  });

  it("denies a pair of agencies with no route", () => {
    expect(denied(decide({ from: "de2", to: "fr" })).reason).toBe("no-route");
  });

  it("needs a route even between two conversations of the same agency", () => {
    expect(denied(decide({ from: "de2", to: "de2" })).reason).toBe("no-route");
    expect(decide({ from: "de1", to: "de1" }).decision).toBe("deliver");
  });

  it("decides from its own indexes, not by reading the policy arrays again", () => {
    const policy = basePolicy();
    const own = new PolicyEngine(policy);
    policy.routes.length = 0;
    policy.accreditations = [];
    policy.equivalences = [];
    expect(
      delivered(decide({ from: "de1", to: "de2", marking: "EU-RESTRICTED" }, own)).effectiveMarking,
    ).toBe("EU-RESTRICTED");
  });
});

describe("PolicyEngine - markings", () => {
  it("denies an event marking that is not declared", () => {
    const verdict = denied(decide({ from: "de1", to: "de2", marking: "XX-SECRET" }));
    expect(verdict.reason).toBe("marking-unknown");
    expect(verdict.detail).toContain("XX-SECRET");
    expect(verdict.effectiveMarking).toBeUndefined();
  });

  it("denies a link marking that is not declared", () => {
    expect(denied(decide({ from: "de1", to: "de2", linkMarking: "XX-SECRET" })).reason).toBe(
      "marking-unknown",
    );
  });

  it("applies the link's marking to an unmarked event", () => {
    const verdict = delivered(decide({ from: "de1", to: "de2", linkMarking: "DE-VS-NFD" }));
    expect(verdict.effectiveMarking).toBe("DE-VS-NFD");
    expect(verdict.marking).toEqual({ id: "DE-VS-NFD", label: "VS-NUR FÜR DEN DIENSTGEBRAUCH" });
  });

  it("takes the event's own marking when it is equivalent to the link's", () => {
    const verdict = delivered(
      decide({ from: "de1", to: "de2", marking: "EU-RESTRICTED", linkMarking: "DE-VS-NFD" }),
    );
    expect(verdict.effectiveMarking).toBe("EU-RESTRICTED");
  });

  it("denies an event marking that conflicts with the link's", () => {
    const verdict = denied(decide({ from: "de1", to: "de2", marking: "NL-DEPV", linkMarking: "DE-VS-NFD" }));
    expect(verdict.reason).toBe("marking-conflict");
    expect(verdict.detail).toContain("NL-DEPV");
    expect(verdict.detail).toContain("DE-VS-NFD");
  });

  it("does not chain equivalences when comparing event and link markings", () => {
    // FR-DR ≡ EU-RESTRICTED ≡ DE-VS-NFD, but FR-DR ≢ DE-VS-NFD.
    expect(
      denied(decide({ from: "de1", to: "de2", marking: "FR-DR", linkMarking: "DE-VS-NFD" })).reason,
    ).toBe("marking-conflict");
  });

  it("denies marked content on a route without a ceiling", () => {
    const verdict = denied(decide({ from: "de2", to: "eu", marking: "EU-RESTRICTED" }));
    expect(verdict.reason).toBe("marking-above-route");
    expect(verdict.detail).toContain("unmarked content only");
    expect(verdict.effectiveMarking).toBe("EU-RESTRICTED");
  });

  it("denies a marking that is neither the route's ceiling nor equivalent to it", () => {
    expect(denied(decide({ from: "de1", to: "de2", marking: "NL-DEPV" })).reason).toBe("marking-above-route");
  });

  it("does not chain equivalences for the route ceiling", () => {
    // The de1-fr ceiling is DE-VS-NFD; FR-DR is only equivalent to it through EU-RESTRICTED.
    const verdict = denied(decide({ from: "fr", to: "de1", marking: "FR-DR" }));
    expect(verdict.reason).toBe("marking-above-route");
    expect(verdict.detail).toContain("DE-VS-NFD");
  });

  it("does not chain equivalences for accreditations", () => {
    // fr is accredited for FR-DR, which DE-VS-NFD reaches only through EU-RESTRICTED.
    const verdict = denied(decide({ from: "de1", to: "fr", marking: "DE-VS-NFD" }));
    expect(verdict.reason).toBe("marking-not-accredited");
    expect(verdict.detail).toContain("matrix/fr");
  });

  it("admits a marking equivalent to both the ceiling and each accreditation", () => {
    expect(decide({ from: "de1", to: "fr", marking: "EU-RESTRICTED" }).decision).toBe("deliver");
  });

  it("caps a route ceiling at the target instance's accreditation", () => {
    expect(decide({ from: "de1", to: "un" }).decision).toBe("deliver");
    const verdict = denied(decide({ from: "de1", to: "un", marking: "DE-VS-NFD" }));
    expect(verdict.reason).toBe("marking-not-accredited");
    expect(verdict.detail).toContain("xmpp/un");
  });

  it("caps a route ceiling at the source instance's accreditation", () => {
    const verdict = denied(decide({ from: "un", to: "de1", linkMarking: "DE-VS-NFD" }));
    expect(verdict.reason).toBe("marking-not-accredited");
    expect(verdict.detail).toContain("xmpp/un");
  });

  it("counts an accreditation for an equivalent marking", () => {
    // de2 is accredited for EU-RESTRICTED only.
    expect(decide({ from: "de1", to: "de2", marking: "DE-VS-NFD" }).decision).toBe("deliver");
  });

  it("reports the effective marking on later denials", () => {
    const verdict = denied(decide({ from: "de2", to: "fr", marking: "DE-VS-NFD" }));
    expect(verdict.reason).toBe("no-route");
    expect(verdict.effectiveMarking).toBe("DE-VS-NFD");
  });
});

describe("PolicyEngine - delivered marking", () => {
  const withDeFr = (() => {
    const policy = basePolicy();
    policy.equivalences?.push(["DE-VS-NFD", "FR-DR"]);
    policy.accreditations?.push({ network: "matrix", instance: "fr", marking: "DE-VS-NFD" });
    return new PolicyEngine(policy);
  })();

  it("shows a German marking to a French agency as the declared French equivalent", () => {
    const verdict = delivered(decide({ from: "de1", to: "fr", marking: "DE-VS-NFD" }, withDeFr));
    expect(verdict.marking).toEqual({ id: "FR-DR", label: "DIFFUSION RESTREINTE", original: "DE-VS-NFD" });
    expect(verdict.effectiveMarking).toBe("DE-VS-NFD");
  });

  it("shows an EU marking in the target agency's country", () => {
    expect(delivered(decide({ from: "de1", to: "fr", marking: "EU-RESTRICTED" })).marking).toEqual({
      id: "FR-DR",
      label: "DIFFUSION RESTREINTE",
      original: "EU-RESTRICTED",
    });
    expect(delivered(decide({ from: "fr", to: "de1", marking: "EU-RESTRICTED" })).marking).toEqual({
      id: "DE-VS-NFD",
      label: "VS-NUR FÜR DEN DIENSTGEBRAUCH",
      original: "EU-RESTRICTED",
    });
  });

  it("keeps the marking as it is when the target shares its country", () => {
    expect(delivered(decide({ from: "de1", to: "de2", marking: "DE-VS-NFD" })).marking).toEqual({
      id: "DE-VS-NFD",
      label: "VS-NUR FÜR DEN DIENSTGEBRAUCH",
    });
  });

  it("keeps the marking as it is when the target's country has no declared equivalent", () => {
    // DE-VS-NFD to an EU agency: EU-RESTRICTED is declared equivalent, so it is translated...
    const policy = basePolicy();
    policy.routes.push({ from: "de1", to: "eu", ceiling: "DE-VS-NFD" });
    const own = new PolicyEngine(policy);
    expect(delivered(decide({ from: "de1", to: "eu", marking: "DE-VS-NFD" }, own)).marking?.id).toBe(
      "EU-RESTRICTED",
    );
    // ...but FR-DR has no German equivalent here (only EU-RESTRICTED), so de2 sees FR-DR itself.
    policy.routes.push({ from: "fr", to: "de2", ceiling: "FR-DR" });
    policy.accreditations?.push({ network: "stashcat", instance: "de2", marking: "FR-DR" });
    const again = new PolicyEngine(policy);
    expect(delivered(decide({ from: "fr", to: "de2", marking: "FR-DR" }, again)).marking).toEqual({
      id: "FR-DR",
      label: "DIFFUSION RESTREINTE",
    });
  });

  it("carries no marking for unmarked content", () => {
    const verdict = delivered(decide({ from: "de1", to: "fr" }));
    expect(verdict.marking).toBeUndefined();
    expect(verdict.effectiveMarking).toBeUndefined();
  });
});

describe("PolicyEngine - attachments", () => {
  it("allows any subtype of a wildcard media type", () => {
    expect(
      decide({
        from: "de1",
        to: "de2",
        attachments: [attachment("image/png", 10), attachment("image/heic", 10)],
      }).decision,
    ).toBe("deliver");
  });

  it("matches media types case-insensitively and ignores parameters", () => {
    const q = query({ from: "de1", to: "de2", attachments: [attachment("application/pdf", 10)] });
    const first = q.event.content?.attachments?.[0];
    if (first !== undefined) first.mediaType = "Application/PDF; name=report.pdf";
    expect(engine.decide(q).decision).toBe("deliver");
  });

  it("denies a media type outside the allow-list", () => {
    const verdict = denied(
      decide({
        from: "de1",
        to: "de2",
        attachments: [attachment("image/png", 10), attachment("video/mp4", 10)],
      }),
    );
    expect(verdict.reason).toBe("attachment-type-not-allowed");
    expect(verdict.detail).toContain("video/mp4");
  });

  it("does not treat a wildcard as matching other top-level types", () => {
    expect(
      denied(decide({ from: "de1", to: "de2", attachments: [attachment("imagex/png", 10)] })).reason,
    ).toBe("attachment-type-not-allowed");
  });

  it("allows an attachment of exactly maxBytes and denies a larger one", () => {
    expect(decide({ from: "de1", to: "de2", attachments: [attachment("image/png", 1000)] }).decision).toBe(
      "deliver",
    );
    const verdict = denied(decide({ from: "de1", to: "de2", attachments: [attachment("image/png", 1001)] }));
    expect(verdict.reason).toBe("attachment-too-large");
    expect(verdict.detail).toContain("1001");
  });

  it("reports the type before the size, whatever the order of the attachments", () => {
    const verdict = denied(
      decide({
        from: "de1",
        to: "de2",
        attachments: [attachment("image/png", 5000), attachment("video/mp4", 1)],
      }),
    );
    expect(verdict.reason).toBe("attachment-type-not-allowed");
  });

  it("denies attachments on a text-only route", () => {
    const verdict = denied(decide({ from: "fr", to: "eu", attachments: [attachment("image/png", 1)] }));
    expect(verdict.reason).toBe("attachments-not-allowed");
    expect(verdict.detail).toContain("text only");
  });

  it("denies attachments on a route without an attachment rule", () => {
    expect(denied(decide({ from: "de1", to: "fr", attachments: [attachment("image/png", 1)] })).reason).toBe(
      "attachments-not-allowed",
    );
  });

  it("treats an empty attachment list as no attachments", () => {
    expect(decide({ from: "fr", to: "eu", attachments: [] }).decision).toBe("deliver");
  });
});

describe("PolicyEngine - policy errors", () => {
  it("rejects a duplicate agency id with its pointer", () => {
    const policy = basePolicy();
    policy.agencies.push({ id: "fr", country: "FR", name: "Gendarmerie", network: "matrix", instance: "gn" });
    const error = configError(() => new PolicyEngine(policy, "policy.yaml"));
    expect(error.pointer).toBe("/agencies/5/id");
    expect(error.message).toContain("policy.yaml");
    expect(error.message).toContain('duplicate agency id "fr"');
    expect(error.code).toBe("FG_POLICY_INVALID");
  });

  it("rejects a route to an unknown agency, naming the pointer and the file", () => {
    const policy = basePolicy();
    policy.routes.push({ from: "de1", to: "nobody" });
    const error = configError(() => new PolicyEngine(policy, "policy.yaml"));
    expect(error.pointer).toBe("/routes/6/to");
    expect(error.message).toContain("/routes/6/to");
    expect(error.message).toContain("policy.yaml");
    expect(error.message).toContain("nobody");
  });

  it("names <policy> when no file is given", () => {
    const policy = basePolicy();
    policy.routes.push({ from: "nobody", to: "de1" });
    expect(configError(() => new PolicyEngine(policy)).message).toMatch(/^<policy>: \/routes\/6\/from: /);
  });

  it.each([
    [
      "a duplicate marking id",
      (p: Policy) => p.markings?.push({ id: "FR-DR", country: "FR", label: "DR", level: "restricted" }),
      "/markings/4/id",
    ],
    [
      "an equivalence naming an unknown marking",
      (p: Policy) => p.equivalences?.push(["DE-VS-NFD", "XX-Y"]),
      "/equivalences/2/1",
    ],
    [
      "a marking declared equivalent to itself",
      (p: Policy) => p.equivalences?.push(["FR-DR", "FR-DR"]),
      "/equivalences/2/1",
    ],
    [
      "an accreditation for an unknown marking",
      (p: Policy) => p.accreditations?.push({ network: "xmpp", instance: "un", marking: "XX-Y" }),
      "/accreditations/4/marking",
    ],
    [
      "a route ceiling naming an unknown marking",
      (p: Policy) => p.routes.push({ from: "de2", to: "fr", ceiling: "XX-Y" }),
      "/routes/6/ceiling",
    ],
    [
      "a second route for a direction already allowed",
      (p: Policy) => p.routes.push({ from: "de2", to: "de1", bidirectional: false }),
      "/routes/6",
    ],
  ])("rejects %s", (_, change, pointer) => {
    const policy = basePolicy();
    change(policy);
    expect(configError(() => new PolicyEngine(policy, "policy.yaml")).pointer).toBe(pointer);
  });

  it("allows a one-way route alongside a one-way route in the other direction", () => {
    const policy = basePolicy();
    policy.routes.push({ from: "eu", to: "de2", bidirectional: false, ceiling: "EU-RESTRICTED" });
    const own = new PolicyEngine(policy);
    expect(denied(decide({ from: "de2", to: "eu", marking: "EU-RESTRICTED" }, own)).reason).toBe(
      "marking-above-route",
    );
    expect(decide({ from: "eu", to: "de2", marking: "EU-RESTRICTED" }, own).decision).toBe("deliver");
  });

  it("allows a route ceiling above an instance's accreditation", () => {
    const policy = basePolicy();
    policy.routes.push({ from: "un", to: "eu", ceiling: "EU-RESTRICTED" });
    expect(() => new PolicyEngine(policy)).not.toThrow();
  });

  it("rejects a marking above restricted as a schema violation with its pointer", () => {
    const yaml = [
      "agencies:",
      "  - { id: a, country: DE, name: A, network: xmpp, instance: a }",
      "markings:",
      "  - { id: DE-GEHEIM, country: DE, label: GEHEIM, level: secret }",
      "routes: []",
    ].join("\n");
    const error = configError(() => PolicyEngine.fromYaml(yaml, "secret.yaml"));
    expect(error.pointer).toBe("/markings/0/level");
    expect(error.message).toContain("secret.yaml");
    expect(error.code).toBe("FG_POLICY_INVALID");
  });

  it("reports a YAML syntax error with the file and the line", () => {
    const yaml = ["agencies:", "  - id: a", "    name: [A", "routes: []"].join("\n");
    const error = configError(() => PolicyEngine.fromYaml(yaml, "broken.yaml"));
    expect(error.pointer).toBe("");
    expect(error.message).toContain("broken.yaml");
    expect(error.message).toMatch(/line \d+/);
  });

  it("adds the line to a reference problem found in YAML", () => {
    const yaml = [
      "agencies:",
      "  - { id: a, country: DE, name: A, network: xmpp, instance: a }",
      "routes:",
      "  - from: a",
      "    to: b",
    ].join("\n");
    const error = configError(() => PolicyEngine.fromYaml(yaml, "refs.yaml"));
    expect(error.pointer).toBe("/routes/0/to");
    expect(error.message).toBe('refs.yaml: /routes/0/to: unknown agency "b" (line 5)');
  });

  it("reports an unreadable file", async () => {
    const dir = await scratchDir("policy");
    await expect(PolicyEngine.fromFile(join(dir, "missing.yaml"))).rejects.toThrow(/missing\.yaml/);
  });

  it("reads a policy file from disk", async () => {
    const dir = await scratchDir("policy");
    const file = join(dir, "p.yaml");
    await writeFile(
      file,
      "agencies:\n  - { id: a, country: DE, name: A, network: xmpp, instance: a }\nroutes: []\n",
    );
    expect((await PolicyEngine.fromFile(file)).summary()).toBe(
      "1 agency, 0 markings, 0 equivalences, 0 accredited instances, 0 routes",
    );
  });
});

describe("PolicyEngine - example policy", () => {
  it("loads schemas/examples/policy.yaml", async () => {
    const example = await PolicyEngine.fromFile(examplePolicy);
    expect(example.summary()).toBe(
      "4 agencies, 3 markings, 3 equivalences, 3 accredited instances, 3 routes",
    );
    expect(example.marking("FR-DR")?.kind).toBe("protection");
  });

  it("delivers a DE-VS-NFD photo from bpol to dinum-mi as FR-DR", async () => {
    const example = await PolicyEngine.fromFile(examplePolicy);
    const q = exampleQuery(example, "bpol", "dinum-mi");
    q.event.marking = "DE-VS-NFD";
    q.event.content = { attachments: [attachment("image/jpeg", 2 * 1024 * 1024)] };
    expect(example.decide(q)).toEqual({
      decision: "deliver",
      reason: "allowed",
      senderAgency: { id: "bpol", name: "Bundespolizei", country: "DE" },
      targetAgency: { id: "dinum-mi", name: "Ministère de l'Intérieur", country: "FR" },
      marking: { id: "FR-DR", label: "DIFFUSION RESTREINTE", original: "DE-VS-NFD" },
      effectiveMarking: "DE-VS-NFD",
    });
  });

  it("denies marked content on the text-only polizei-ni to dinum-mi route", async () => {
    const example = await PolicyEngine.fromFile(examplePolicy);
    const q = exampleQuery(example, "polizei-ni", "dinum-mi");
    q.event.marking = "DE-VS-NFD";
    expect(example.decide(q)).toMatchObject({ decision: "deny", reason: "marking-above-route" });
  });

  it("denies everything to an agency without routes", async () => {
    const example = await PolicyEngine.fromFile(examplePolicy);
    expect(example.decide(exampleQuery(example, "bpol", "zoll"))).toMatchObject({
      decision: "deny",
      reason: "no-route",
    });
  });
});

function exampleQuery(on: PolicyEngine, from: string, to: string): RouteQuery {
  const at = (id: string): Endpoint => {
    const agency = on.agency(id);
    if (agency === undefined) throw new Error(`example policy lacks ${id}`);
    return { network: agency.network, instance: agency.instance, conversation: `room-${id}`, agency: id };
  };
  const source = at(from);
  return {
    event: {
      specVersion: "1",
      id: "evt-00000002",
      type: "message.created",
      source: { network: source.network, instance: source.instance, conversation: source.conversation },
      sender: { userId: "bob" },
      content: { body: "Lage" },
      timestamp: "2025-01-01T12:00:00Z",
    },
    source,
    target: at(to),
  };
}

describe("PolicyEngine - release caveats", () => {
  /**
   * Every instance is accredited for EU-R, which every caveated marking is declared equivalent to: without the
   * caveats, each of them would go anywhere a route leads.
   */
  function caveatPolicy(): Policy {
    const agency = (id: string, country: string, network: string): Policy["agencies"][number] => ({
      id,
      country,
      name: id,
      network,
      instance: id,
    });
    const agencies: Policy["agencies"] = [
      agency("de1", "DE", "xmpp"),
      agency("de2", "DE", "stashcat"),
      agency("fr", "FR", "matrix"),
      agency("nl", "NL", "xmpp"),
      agency("eu", "EU", "xmpp"),
    ];
    return {
      agencies,
      markings: [
        {
          id: "DE-NFD-NUR-DE",
          country: "DE",
          label: "VS-NfD – NUR FÜR DEUTSCHE",
          level: "restricted",
          nationalOnly: true,
        },
        {
          id: "FR-DR-SF",
          country: "FR",
          label: "DIFFUSION RESTREINTE SPÉCIAL FRANCE",
          level: "restricted",
          nationalOnly: true,
        },
        {
          id: "DE-NFD-REL-FR",
          country: "DE",
          label: "VS-NfD – REL TO DEU, FRA",
          level: "restricted",
          releasableTo: ["FR"],
        },
        { id: "EU-R", country: "EU", label: "RESTREINT UE/EU RESTRICTED", level: "restricted" },
      ],
      equivalences: [
        ["DE-NFD-NUR-DE", "EU-R"],
        ["FR-DR-SF", "EU-R"],
        ["DE-NFD-REL-FR", "EU-R"],
      ],
      accreditations: agencies.map((a) => ({ network: a.network, instance: a.instance, marking: "EU-R" })),
      routes: [
        { from: "de1", to: "de2", ceiling: "EU-R" },
        { from: "de1", to: "fr", ceiling: "EU-R" },
        { from: "de1", to: "nl", ceiling: "EU-R" },
        { from: "fr", to: "eu", ceiling: "EU-R" },
      ],
    };
  }
  const caveats = new PolicyEngine(caveatPolicy(), "caveats.yaml");
  const ask = (a: Ask): Verdict => caveats.decide(queryOn(caveats, a));

  function queryOn(on: PolicyEngine, a: Ask): RouteQuery {
    const q = query(a);
    const place = (e: Endpoint): Endpoint => {
      const declared = on.agency(e.agency);
      return { ...e, network: declared?.network ?? e.network, instance: declared?.instance ?? e.instance };
    };
    const source = place(q.source);
    return {
      ...q,
      source,
      target: place(q.target),
      event: {
        ...q.event,
        source: { ...q.event.source, network: source.network, instance: source.instance },
      },
    };
  }

  it("a national-only marking stays in its country, whatever equivalence a route or accreditation admits it by", () => {
    expect(delivered(ask({ from: "de1", to: "de2", marking: "DE-NFD-NUR-DE" })).effectiveMarking).toBe(
      "DE-NFD-NUR-DE",
    );
    const abroad = denied(ask({ from: "de1", to: "fr", marking: "DE-NFD-NUR-DE" }));
    expect(abroad.reason).toBe("marking-not-releasable");
    expect(abroad.detail).toContain("DE-NFD-NUR-DE");
    expect(abroad.detail).toContain("FR");
    expect(denied(ask({ from: "fr", to: "eu", marking: "FR-DR-SF" })).reason).toBe("marking-not-releasable");
  });

  it("a marking releasable to named countries reaches those and its own, no other", () => {
    expect(delivered(ask({ from: "de1", to: "fr", marking: "DE-NFD-REL-FR" })).decision).toBe("deliver");
    expect(delivered(ask({ from: "de1", to: "de2", marking: "DE-NFD-REL-FR" })).decision).toBe("deliver");
    expect(denied(ask({ from: "de1", to: "nl", marking: "DE-NFD-REL-FR" })).reason).toBe(
      "marking-not-releasable",
    );
  });

  it("a caveat binds through the link's marking and the marking of what a message relates to", () => {
    expect(denied(ask({ from: "de1", to: "fr", linkMarking: "DE-NFD-NUR-DE" })).reason).toBe(
      "marking-not-releasable",
    );
    const reply = queryOn(caveats, { from: "de1", to: "fr", marking: "EU-R" });
    expect(denied(caveats.decide({ ...reply, relatedMarkings: ["DE-NFD-NUR-DE"] })).reason).toBe(
      "marking-not-releasable",
    );
  });

  it("a marking both national-only and releasable to others is refused with its pointer", () => {
    const policy = caveatPolicy();
    const markings = policy.markings ?? [];
    const [first] = markings;
    if (first !== undefined) markings[0] = { ...first, releasableTo: ["FR"] };
    const error = configError(() => new PolicyEngine(policy, "caveats.yaml"));
    expect(error.pointer).toBe("/markings/0/releasableTo");
    expect(error.message).toContain("national-only");
  });
});
