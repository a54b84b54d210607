/**
 * The marking catalogue of a policy: which markings exist, which pairs an agreement declares equivalent,
 * and how a marking reads in another country.
 */
import type { Marking, Policy } from "../../../schemas/types.js";

/** Reports a problem in the policy at a JSON pointer. Never returns. */
export type PolicyFault = (pointer: string, problem: string) => never;

/** The effective marking of one event on one link, or why there is none. */
export type MarkingResolution =
  /**
   * `applies`: every distinct marking in play (the effective one first). Equivalence is not transitive, so a
   * ceiling or accreditation must admit each of them, not only the effective one.
   */
  | { ok: true; effective: string | undefined; applies: string[] }
  | { ok: false; reason: "marking-unknown" | "marking-conflict"; detail: string };

const NONE: ReadonlySet<string> = new Set();

/** The declared markings and their equivalences, indexed so that every lookup is a map access. */
export class MarkingCatalogue {
  readonly #byId = new Map<string, Marking>();
  readonly #equivalents = new Map<string, Set<string>>();
  /** `${markingId}\u0000${country}` → the equivalent marking of that country (the first one declared). */
  readonly #translations = new Map<string, Marking>();

  /** Indexes `markings` and `equivalences`; reports duplicate ids and equivalences naming unknown markings. */
  constructor(policy: Pick<Policy, "markings" | "equivalences">, fault: PolicyFault) {
    const firstIndex = new Map<string, number>();
    (policy.markings ?? []).forEach((marking, i) => {
      const earlier = firstIndex.get(marking.id);
      if (earlier !== undefined) {
        fault(`/markings/${i}/id`, `duplicate marking id "${marking.id}" (also /markings/${earlier})`);
      }
      firstIndex.set(marking.id, i);
      if (marking.nationalOnly === true && (marking.releasableTo ?? []).length > 0)
        fault(
          `/markings/${i}/releasableTo`,
          `marking "${marking.id}" is national-only and releasable to others`,
        );
      this.#byId.set(marking.id, marking);
    });

    (policy.equivalences ?? []).forEach((pair, i) => {
      // The generated type allows longer tuples; the schema does not, and a "pair" of three has no clear meaning.
      if (pair.length !== 2) fault(`/equivalences/${i}`, "an equivalence names exactly two markings");
      const [a, b] = pair;
      const left = this.#byId.get(a);
      if (left === undefined) fault(`/equivalences/${i}/0`, `unknown marking "${a}"`);
      const right = this.#byId.get(b);
      if (right === undefined) fault(`/equivalences/${i}/1`, `unknown marking "${b}"`);
      if (a === b) fault(`/equivalences/${i}/1`, `marking "${a}" is named twice`);
      this.#link(left, right);
      this.#link(right, left);
    });
  }

  #link(from: Marking, to: Marking): void {
    let set = this.#equivalents.get(from.id);
    if (set === undefined) this.#equivalents.set(from.id, (set = new Set()));
    set.add(to.id);
    const key = `${from.id}\u0000${to.country}`;
    if (from.country !== to.country && !this.#translations.has(key)) this.#translations.set(key, to);
  }

  /** The declared marking with this id. */
  get(id: string): Marking | undefined {
    return this.#byId.get(id);
  }

  /** Same marking, or a pair declared equivalent. Deliberately not transitive. */
  equivalent(a: string, b: string): boolean {
    return a === b || (this.#equivalents.get(a)?.has(b) ?? false);
  }

  /** The marking itself plus its declared equivalents: what a ceiling or an accreditation of `id` admits. */
  admitted(id: string): Set<string> {
    return new Set([id, ...(this.#equivalents.get(id) ?? NONE)]);
  }

  /**
   * Why content marked `id` may not reach an agency of `country`, by the marking's own release caveats
   * (nationalOnly, releasableTo); undefined when it may. Equivalents play no part: a caveat is the marking's.
   */
  releaseRefusal(id: string, country: string): string | undefined {
    const marking = this.#byId.get(id);
    if (marking === undefined || marking.country === country) return undefined;
    if (marking.nationalOnly === true)
      return `${id} is for ${marking.country} only and does not go to an agency of ${country}.`;
    const releasable = marking.releasableTo;
    if (releasable !== undefined && !releasable.includes(country))
      return `${id} is releasable to ${[marking.country, ...releasable].join(", ")} only, not to an agency of ${country}.`;
    return undefined;
  }

  /** How `id` is shown to an agency of `country`: its declared equivalent of that country, else itself. */
  shownIn(id: string, country: string): Marking | undefined {
    const marking = this.#byId.get(id);
    if (marking === undefined || marking.country === country) return marking;
    return this.#translations.get(`${id}\u0000${country}`) ?? marking;
  }

  /**
   * The effective marking of an event on a link: the event's own, else the marking of a message it relates to
   * (an edit, a reply or a reaction is about that message, whatever its sender's client put on it), else the
   * link's. Every other marking present must be the same or declared equivalent. Markings are all of one
   * level, so nothing else is "higher".
   */
  resolve(
    eventMarking: string | undefined,
    linkMarking: string | undefined,
    inherited: readonly string[] = [],
  ): MarkingResolution {
    for (const id of [eventMarking, ...inherited, linkMarking]) {
      if (id !== undefined && !this.#byId.has(id)) {
        return {
          ok: false,
          reason: "marking-unknown",
          detail: `Marking ${id} is not declared in the policy.`,
        };
      }
    }
    const effective = eventMarking ?? inherited[0] ?? linkMarking;
    if (effective === undefined) return { ok: true, effective, applies: [] };
    const own = eventMarking === undefined ? "The message it relates to" : "The event";
    for (const other of inherited) {
      if (!this.equivalent(effective, other)) {
        return {
          ok: false,
          reason: "marking-conflict",
          detail: `${own} is marked ${effective} but a message it relates to is marked ${other}, and the two are not declared equivalent.`,
        };
      }
    }
    if (linkMarking !== undefined && !this.equivalent(effective, linkMarking)) {
      return {
        ok: false,
        reason: "marking-conflict",
        detail: `${own} is marked ${effective} but its link is marked ${linkMarking}, and the two are not declared equivalent.`,
      };
    }
    const applies = [
      ...new Set([effective, ...inherited, ...(linkMarking === undefined ? [] : [linkMarking])]),
    ];
    return { ok: true, effective, applies };
  }
}
