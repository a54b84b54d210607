/**
 * The policy engine: decides for one event and one target endpoint whether the event may be delivered.
 * Everything not allowed by the policy is denied. The policy is indexed once, so a decision costs the
 * same however many agencies and routes the policy declares.
 */
import { resolve as resolvePath } from "node:path";
import type {
  Agency,
  AgencyRef,
  AttachmentRule,
  DecisionReason,
  DeliveredMarking,
  Endpoint,
  Marking,
  NormalisedEvent,
  Policy,
} from "../../../schemas/types.js";
import { parseYaml, readText } from "../../platform/config/loadConfig.js";
import { validatePolicy } from "../../../schemas/contract/schemas.js";
import { FEDERATION_NETWORK } from "../../../schemas/contract/subjects.js";
import { ConfigError } from "../../../schemas/contract/errors.js";
import { MarkingCatalogue, type PolicyFault } from "./markings.js";

/** One question to the engine: may this event go from its source endpoint to this target endpoint? */
export interface RouteQuery {
  /** The event, already validated against the event schema. */
  event: NormalisedEvent;
  /** The link endpoint the event came from; its agency owns the source conversation. */
  source: Endpoint;
  /** One other endpoint of the same link. */
  target: Endpoint;
  /** The link's default marking, if any. */
  linkMarking?: string;
  /** The effective markings of the messages the event is about (it edits, answers or reacts to). */
  relatedMarkings?: readonly string[];
}

/** The engine's answer. `detail` names agencies and markings only, never message content. */
export type Verdict =
  | {
      decision: "deliver";
      reason: "allowed";
      /** The effective marking as the target agency's country writes it; absent for unmarked content. */
      marking?: DeliveredMarking;
      senderAgency: AgencyRef;
      targetAgency: AgencyRef;
      /** The effective marking's id as declared, before translation. */
      effectiveMarking?: string;
    }
  | {
      decision: "deny";
      reason: Exclude<DecisionReason, "allowed">;
      detail: string;
      /** The effective marking, when it could be determined. */
      effectiveMarking?: string;
    };

type Deny = Extract<Verdict, { decision: "deny" }>;

interface CompiledAttachments {
  exact: ReadonlySet<string>;
  /** Top-level types allowed whole ("image" for "image/*"). */
  wildcard: ReadonlySet<string>;
  maxBytes: number;
}

interface CompiledRoute {
  /** Position in the policy's routes, for error messages. */
  index: number;
  ceiling: string | undefined;
  /** Markings the ceiling admits: the ceiling and its declared equivalents. Empty: unmarked only. */
  admits: ReadonlySet<string>;
  textOnly: boolean;
  attachments: CompiledAttachments | undefined;
}

const NONE: ReadonlySet<string> = new Set();

function routeKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}

function instanceKey(network: string, instance: string): string {
  return `${network}/${instance}`;
}

/** "Image/PNG; charset=x" → "image/png". */
function bareMediaType(mediaType: string): string {
  return (mediaType.split(";")[0] ?? "").trim().toLowerCase();
}

function compileAttachments(rule: AttachmentRule): CompiledAttachments {
  const exact = new Set<string>();
  const wildcard = new Set<string>();
  for (const entry of rule.mediaTypes) {
    const type = bareMediaType(entry);
    if (type.endsWith("/*")) wildcard.add(type.slice(0, -2));
    else exact.add(type);
  }
  return { exact, wildcard, maxBytes: rule.maxBytes };
}

function mediaTypeAllowed(rule: CompiledAttachments, mediaType: string): boolean {
  const type = bareMediaType(mediaType);
  const slash = type.indexOf("/");
  return rule.exact.has(type) || (slash > 0 && rule.wildcard.has(type.slice(0, slash)));
}

function agencyRef(agency: Agency): AgencyRef {
  return { id: agency.id, name: agency.name, country: agency.country };
}

/** Decides per event and target, from a policy checked once at construction. */
export class PolicyEngine {
  readonly #agencies = new Map<string, Agency>();
  /** Keyed by routeKey(from, to); a bidirectional route is entered in both directions. */
  readonly #routes = new Map<string, CompiledRoute>();
  /** Keyed by instanceKey; the markings an instance may carry, equivalents included. */
  readonly #accredited = new Map<string, Set<string>>();
  readonly #markings: MarkingCatalogue;
  readonly #summary: string;

  /**
   * Indexes a schema-valid policy and checks what the schema cannot: duplicate agency and marking ids,
   * routes, accreditations and equivalences naming undeclared agencies or markings, and two routes that
   * allow the same direction (their ceilings or attachment rules would contradict each other).
   * A route ceiling above an instance's accreditation is allowed here and capped in {@link decide}.
   *
   * @param file - Named in errors; defaults to "<policy>".
   * @param at - JSON pointer of the policy within `file`, for a policy written inside a config file.
   * @throws ConfigError naming the file and the JSON pointer of the offending value.
   */
  constructor(policy: Policy, file = "<policy>", at = "") {
    const fault: PolicyFault = (pointer, problem) => {
      // detail.problem keeps the bare problem, so fromYaml can add the line number.
      throw new ConfigError(file, at + pointer, problem, { code: "FG_POLICY_INVALID", detail: { problem } });
    };

    const agencyIndex = new Map<string, number>();
    policy.agencies.forEach((agency, i) => {
      const earlier = agencyIndex.get(agency.id);
      if (earlier !== undefined) {
        fault(`/agencies/${i}/id`, `duplicate agency id "${agency.id}" (also /agencies/${earlier})`);
      }
      agencyIndex.set(agency.id, i);
      this.#agencies.set(agency.id, agency);
    });

    this.#markings = new MarkingCatalogue(policy, fault);

    (policy.accreditations ?? []).forEach((accreditation, i) => {
      if (this.#markings.get(accreditation.marking) === undefined) {
        fault(`/accreditations/${i}/marking`, `unknown marking "${accreditation.marking}"`);
      }
      const key = instanceKey(accreditation.network, accreditation.instance);
      const admitted = this.#accredited.get(key) ?? new Set<string>();
      for (const id of this.#markings.admitted(accreditation.marking)) admitted.add(id);
      this.#accredited.set(key, admitted);
    });

    policy.routes.forEach((route, i) => {
      for (const end of ["from", "to"] as const) {
        if (!this.#agencies.has(route[end])) fault(`/routes/${i}/${end}`, `unknown agency "${route[end]}"`);
      }
      if (route.ceiling !== undefined && this.#markings.get(route.ceiling) === undefined) {
        fault(`/routes/${i}/ceiling`, `unknown marking "${route.ceiling}"`);
      }
      const compiled: CompiledRoute = {
        index: i,
        ceiling: route.ceiling,
        admits: route.ceiling === undefined ? NONE : this.#markings.admitted(route.ceiling),
        textOnly: route.textOnly ?? false,
        attachments: route.attachments === undefined ? undefined : compileAttachments(route.attachments),
      };
      const directions: [string, string][] = [[route.from, route.to]];
      if (route.bidirectional !== false && route.from !== route.to) directions.push([route.to, route.from]);
      for (const [from, to] of directions) {
        const key = routeKey(from, to);
        const earlier = this.#routes.get(key);
        if (earlier !== undefined) {
          fault(
            `/routes/${i}`,
            `a second route from "${from}" to "${to}" (the first is /routes/${earlier.index})`,
          );
        }
        this.#routes.set(key, compiled);
      }
    });

    const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;
    this.#summary = [
      count(policy.agencies.length, "agency", "agencies"),
      count(policy.markings?.length ?? 0, "marking"),
      count(policy.equivalences?.length ?? 0, "equivalence"),
      count(this.#accredited.size, "accredited instance"),
      count(policy.routes.length, "route"),
    ].join(", ");
  }

  /**
   * Reads, validates and indexes a policy YAML file.
   *
   * @throws ConfigError for an unreadable file, a YAML syntax error (with its line), a schema violation or a
   *   reference problem (with the JSON pointer and, where it can be found, the line).
   */
  static async fromFile(path: string): Promise<PolicyEngine> {
    const file = resolvePath(path);
    return PolicyEngine.fromYaml(await readText(file), file);
  }

  /** Parses, validates and indexes policy YAML; `file` is named in errors. @throws ConfigError */
  static fromYaml(text: string, file: string): PolicyEngine {
    const { value, locate } = parseYaml(text, file);
    const problems = validatePolicy.problems(value);
    const first = problems[0];
    if (first !== undefined) {
      const more = problems.length > 1 ? ` (+${problems.length - 1} more)` : "";
      throw new ConfigError(file, first.pointer, `${first.message}${locate(first.pointer)}${more}`, {
        code: "FG_POLICY_INVALID",
        detail: { problems },
      });
    }
    try {
      return new PolicyEngine(value as Policy, file);
    } catch (error) {
      const problem = error instanceof ConfigError ? error.detail["problem"] : undefined;
      if (!(error instanceof ConfigError) || typeof problem !== "string") throw error;
      throw new ConfigError(file, error.pointer, `${problem}${locate(error.pointer)}`, {
        code: error.code,
        cause: error,
      });
    }
  }

  /** The declared agency with this id. */
  agency(id: string): Agency | undefined {
    return this.#agencies.get(id);
  }

  /** The declared marking with this id (links name markings too). */
  marking(id: string): Marking | undefined {
    return this.#markings.get(id);
  }

  /** One line for `fedgate config check`, e.g. "4 agencies, 3 markings, 3 equivalences, 3 accredited instances, 3 routes". */
  summary(): string {
    return this.#summary;
  }

  /**
   * The marking an event carries on its link, as decide() determines it; where that fails (an undeclared or
   * conflicting marking), the first marking it claims, so that what relates to it is judged by that.
   */
  markingOf(q: Pick<RouteQuery, "event" | "linkMarking" | "relatedMarkings">): string | undefined {
    const resolution = this.#markings.resolve(q.event.marking, q.linkMarking, q.relatedMarkings);
    if (resolution.ok) return resolution.effective;
    return q.event.marking ?? q.relatedMarkings?.[0] ?? q.linkMarking;
  }

  /** Decides whether `q.event` may be delivered to `q.target`. Never throws for a valid event. */
  decide(q: RouteQuery): Verdict {
    const { event, source, target } = q;
    const resolution = this.#markings.resolve(event.marking, q.linkMarking, q.relatedMarkings);
    const effective = resolution.ok ? resolution.effective : undefined;
    const deny = (reason: Deny["reason"], detail: string): Deny =>
      effective === undefined
        ? { decision: "deny", reason, detail }
        : { decision: "deny", reason, detail, effectiveMarking: effective };

    // 1. Every agency involved is declared.
    const senderId = event.sender.agency ?? source.agency;
    const sender = this.#agencies.get(senderId);
    if (sender === undefined)
      return deny("agency-unknown", `Sender agency ${senderId} is not declared in the policy.`);
    const owner = this.#agencies.get(source.agency);
    if (owner === undefined)
      return deny("agency-unknown", `Source agency ${source.agency} is not declared in the policy.`);
    const receiver = this.#agencies.get(target.agency);
    if (receiver === undefined)
      return deny("agency-unknown", `Target agency ${target.agency} is not declared in the policy.`);

    // 2. Agencies speak only from and to their own network instance, so an adapter cannot speak for another agency.
    //    A partner gateway speaks for every agency its side of a shared conversation holds: any of its own.
    const sharedByPartner =
      source.network === FEDERATION_NETWORK &&
      sender.network === owner.network &&
      sender.instance === owner.instance;
    if (sender.id !== owner.id && !sharedByPartner) {
      return deny(
        "agency-not-on-network",
        `Sender agency ${sender.id} does not own the source conversation, which belongs to ${owner.id}.`,
      );
    }
    for (const at of [event.source, source]) {
      if (at.network !== owner.network || at.instance !== owner.instance) {
        return deny(
          "agency-not-on-network",
          `Agency ${owner.id} is on ${owner.network}/${owner.instance}, not on ${at.network}/${at.instance}.`,
        );
      }
    }
    if (target.network !== receiver.network || target.instance !== receiver.instance) {
      return deny(
        "agency-not-on-network",
        `Agency ${receiver.id} is on ${receiver.network}/${receiver.instance}, not on ${target.network}/${target.instance}.`,
      );
    }

    // 3. A route in this direction; the same agency on both ends needs one too.
    const route = this.#routes.get(routeKey(sender.id, receiver.id));
    if (route === undefined)
      return deny("no-route", `No route allows ${sender.id} to send to ${receiver.id}.`);

    // 4. Declared and consistent markings.
    if (!resolution.ok) return deny(resolution.reason, resolution.detail);

    // 5. Release caveats of every marking in play, before any equivalence can admit it.
    for (const marking of resolution.applies) {
      const refusal = this.#markings.releaseRefusal(marking, receiver.country);
      if (refusal !== undefined) return deny("marking-not-releasable", refusal);
    }

    // 6. Marked content needs the route's ceiling and both instances' accreditations, for every marking in
    //    play: the event's, the link's and those of what it relates to (equivalence is not transitive).
    for (const marking of resolution.applies) {
      if (!route.admits.has(marking)) {
        return deny(
          "marking-above-route",
          route.ceiling === undefined
            ? `The route from ${sender.id} to ${receiver.id} carries unmarked content only, not ${marking}.`
            : `${marking} is not within the ceiling ${route.ceiling} of the route from ${sender.id} to ${receiver.id}.`,
        );
      }
      for (const agency of [sender, receiver]) {
        if (!(this.#accredited.get(instanceKey(agency.network, agency.instance)) ?? NONE).has(marking)) {
          return deny(
            "marking-not-accredited",
            `${agency.network}/${agency.instance} (${agency.id}) is not accredited for ${marking}.`,
          );
        }
      }
    }

    // 7. Attachments: type checked before size, so the reason does not depend on attachment order.
    const attachments = event.content?.attachments ?? [];
    if (attachments.length > 0) {
      const rule = route.attachments;
      if (route.textOnly || rule === undefined) {
        return deny(
          "attachments-not-allowed",
          `The route from ${sender.id} to ${receiver.id} does not carry attachments${route.textOnly ? " (text only)" : ""}.`,
        );
      }
      for (const attachment of attachments) {
        if (!mediaTypeAllowed(rule, attachment.mediaType)) {
          return deny(
            "attachment-type-not-allowed",
            `Attachments of type ${bareMediaType(attachment.mediaType)} are not allowed from ${sender.id} to ${receiver.id}.`,
          );
        }
      }
      for (const attachment of attachments) {
        if (attachment.size > rule.maxBytes) {
          return deny(
            "attachment-too-large",
            `An attachment of ${attachment.size} bytes exceeds the limit of ${rule.maxBytes} bytes from ${sender.id} to ${receiver.id}.`,
          );
        }
      }
    }

    // 8. Deliver, with the marking as the target's country writes it.
    const verdict: Verdict = {
      decision: "deliver",
      reason: "allowed",
      senderAgency: agencyRef(sender),
      targetAgency: agencyRef(receiver),
    };
    if (effective !== undefined) {
      const shown = this.#markings.shownIn(effective, receiver.country);
      if (shown !== undefined) {
        verdict.marking =
          shown.id === effective
            ? { id: shown.id, label: shown.label }
            : { id: shown.id, label: shown.label, original: effective };
      }
      verdict.effectiveMarking = effective;
    }
    return verdict;
  }
}
