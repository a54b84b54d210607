/**
 * Who an admin token speaks for: the operator (admin.token), who sees every link, or one agency
 * (admin.agencyTokens), whose admin sees and changes only the links that agency has an endpoint in.
 * Used by /v1 and by the console alike.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Link } from "../../../schemas/types.js";
import { PermanentError, type SchemaProblem, ValidationError } from "../../../schemas/contract/errors.js";

/** The operator's scope has no agency. */
export interface AdminScope {
  agency?: string;
}

export const operatorScope: AdminScope = {};

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** The admin tokens as digests, to tell which scope a presented token has. */
export class AdminTokens {
  private readonly entries: { digest: Buffer; scope: AdminScope }[];

  /** Throws FG_CONFIG_INVALID for an empty token or one token given twice (its scope would be ambiguous). */
  constructor(operatorToken: string, agencyTokens: Readonly<Record<string, string>> = {}) {
    const all: [string, AdminScope][] = [
      [operatorToken, operatorScope],
      ...Object.entries(agencyTokens).map(([agency, token]): [string, AdminScope] => [token, { agency }]),
    ];
    for (const [token, scope] of all) {
      // An empty token would let "Authorization: Bearer" through.
      if (token === "")
        throw new PermanentError(
          "FG_CONFIG_INVALID",
          `the admin API token${scope.agency === undefined ? "" : ` of agency ${scope.agency}`} must not be empty`,
        );
    }
    if (new Set(all.map(([token]) => token)).size !== all.length)
      throw new PermanentError(
        "FG_CONFIG_INVALID",
        "two admin API tokens are the same; each must be its own",
      );
    this.entries = all.map(([token, scope]) => ({ digest: sha256(token), scope }));
  }

  /**
   * The scope of a presented token, or undefined. Every digest is compared in constant time, whichever
   * matches, so neither the token's length nor which of them matched shows in the timing.
   */
  scopeOf(presented: string): AdminScope | undefined {
    const digest = sha256(presented);
    let found: AdminScope | undefined;
    for (const entry of this.entries) if (timingSafeEqual(digest, entry.digest)) found = entry.scope;
    return found;
  }
}

/** Whether a scope covers a link: the operator's covers every link, an agency's those with an endpoint of it. */
export function covers(scope: AdminScope, link: Pick<Link, "endpoints">): boolean {
  return scope.agency === undefined || link.endpoints.some((e) => e.agency === scope.agency);
}

/**
 * Whether a scope may create a link: FG_AGENCY_UNKNOWN for an agency the policy does not declare, then
 * FG_FORBIDDEN when an agency admin's own agency is not on it.
 */
export function checkNewLink(
  link: Link,
  scope: AdminScope,
  checkAgency: (agencyId: string) => boolean,
): void {
  const unknown: SchemaProblem[] = link.endpoints.flatMap((endpoint, index) =>
    checkAgency(endpoint.agency)
      ? []
      : [
          {
            pointer: `/endpoints/${index}/agency`,
            message: `agency "${endpoint.agency}" is not declared in the policy`,
          },
        ],
  );
  if (unknown.length > 0) throw new ValidationError("FG_AGENCY_UNKNOWN", `link ${link.id}`, unknown);
  if (!covers(scope, link))
    throw new PermanentError(
      "FG_FORBIDDEN",
      `agency ${scope.agency ?? ""}'s admin can only create links it is on`,
    );
}
