/**
 * What the router asks before anything crosses to or from a partner gateway, on top of the policy: the
 * conversation must be consented by both gateways, and an event from a partner may name only an agency the
 * partner's signed manifest gives it. The policy then decides as for any network (routes, ceilings, release
 * caveats, accreditation), so each gateway applies its own.
 */
import type { Endpoint, NormalisedEvent } from "../../../schemas/types.js";
import { FEDERATION_NETWORK } from "../../../schemas/contract/subjects.js";
import type { ConsentStore } from "./ConsentStore.js";
import type { PartnerManifestStore } from "./PartnerManifestStore.js";

export interface GateDenial {
  decision: "deny";
  reason: "not-consented" | "agency-not-in-manifest";
  detail: string;
}

export class FederationGate {
  constructor(
    private readonly consents: ConsentStore,
    private readonly manifests: PartnerManifestStore,
  ) {}

  private consent(endpoint: Endpoint): GateDenial | undefined {
    if (this.consents.isActive(endpoint.instance, endpoint.conversation)) return undefined;
    const state = this.consents.get(endpoint.instance, endpoint.conversation)?.state ?? "not approved";
    return {
      decision: "deny",
      reason: "not-consented",
      detail: `The conversation ${endpoint.conversation} shared with gateway ${endpoint.instance} is ${state === "pending" ? "not yet approved by both gateways" : state}.`,
    };
  }

  /** A denial for an event from a partner gateway, or undefined when it may go on to the policy. */
  incoming(event: NormalisedEvent, source: Endpoint): GateDenial | undefined {
    const partner = source.instance;
    const manifest = this.manifests.current(partner);
    const agency = event.sender.agency ?? source.agency;
    if (manifest === undefined)
      return {
        decision: "deny",
        reason: "agency-not-in-manifest",
        detail: `No valid manifest of gateway ${partner} is held: it speaks for no agency.`,
      };
    if (!manifest.agencies.some((a) => a.id === agency))
      return {
        decision: "deny",
        reason: "agency-not-in-manifest",
        detail: `Gateway ${partner}'s manifest (version ${String(manifest.version)}) does not give it agency ${agency}.`,
      };
    return this.consent(source);
  }

  /** A denial for a delivery to a partner gateway, or undefined when the policy may decide it. */
  outgoing(target: Endpoint): GateDenial | undefined {
    if (this.manifests.current(target.instance) === undefined)
      return {
        decision: "deny",
        reason: "not-consented",
        detail: `No valid manifest of gateway ${target.instance} is held: nothing is released to it.`,
      };
    return this.consent(target);
  }
}

/** Whether an endpoint is a partner gateway's side of a shared conversation. */
export function isFederated(endpoint: Pick<Endpoint, "network">): boolean {
  return endpoint.network === FEDERATION_NETWORK;
}
