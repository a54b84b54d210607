/**
 * What the federation benchmark sets up, as plain data: ten gateways, which of them a leafnode joins, the
 * shared conversations and the path each takes, and per gateway its policy, links, manifest agencies and
 * nats-server partners. Nothing here starts anything (see federation.ts).
 *
 * A gateway has one native agency (its national police, on xmpp/police). Every other gateway's agency is
 * declared on network federation, instance <the neighbour its messages come through>: the partner itself in
 * a full mesh, the hub for a spoke. The hub relays: its links join two federation endpoints, and its
 * manifest lists the spokes' agencies too, since a spoke accepts from the hub only the agencies the hub's
 * manifest gives it.
 */
import type { Agency, Endpoint, Link, Policy, Route } from "../schemas/types.js";
import { FEDERATION_NETWORK } from "../schemas/contract/subjects.js";
import type { Credentials, FederationPartner } from "../gateway/core/federation/federationAccounts.js";

export type LayoutName = "hub-and-spoke" | "full mesh";

export const COUNTRIES = ["AT", "BE", "DE", "DK", "ES", "FR", "IT", "NL", "PL", "SE"] as const;

/** The hub of the hub-and-spoke layout. */
export const HUB = "g0";

/** Where each gateway's own agency lives; the same name on every gateway (each has its own bus). */
export const NATIVE = { network: "xmpp", instance: "police" } as const;

export interface GatewayPlan {
  id: string;
  country: string;
  /** Its own agency, on its native network. */
  agency: Agency;
  /** The partner gateways a leafnode joins it to. */
  partners: string[];
}

/** A leafnode between two gateways: `listener` has the port, `connector` dials it. */
export interface Leafnode {
  listener: string;
  connector: string;
}

export interface SharedConversation {
  /** Its name on every gateway it crosses (a SharedConversation token). */
  name: string;
  /** The gateways it crosses, native end first and last: two for one hop, three (via the hub) for two. */
  path: string[];
}

export interface FederationPlan {
  layout: LayoutName;
  gateways: GatewayPlan[];
  leafnodes: Leafnode[];
  conversations: SharedConversation[];
}

/** One approval to give: on `gateway`'s admin API, PUT /v1/consents/{partner}/{conversation}. */
export interface ConsentToGive {
  gateway: string;
  partner: string;
  conversation: string;
}

/** A small seeded PRNG (mulberry32): the same seed gives the same conversations in both layouts. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gatewayIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `g${String(i)}`);
}

function agencyOf(index: number): Agency {
  const country = COUNTRIES[index % COUNTRIES.length] ?? "EU";
  return {
    id: `police-${country.toLowerCase()}`,
    country,
    name: `National Police ${country}`,
    ...NATIVE,
  };
}

/** The partner a gateway passes a message for `to` to. */
export function nextHop(layout: LayoutName, from: string, to: string): string {
  return layout === "full mesh" || from === HUB || to === HUB ? to : HUB;
}

/**
 * The gateways, leafnodes and `conversationCount` conversations between random pairs of gateways; pairs
 * are drawn the same way in both layouts, so they share the same conversations and differ in paths only.
 */
export function planFederation(
  layout: LayoutName,
  gatewayCount: number,
  conversationCount: number,
  seed: number,
): FederationPlan {
  const ids = gatewayIds(gatewayCount);
  const leafnodes: Leafnode[] = [];
  if (layout === "hub-and-spoke") {
    for (const spoke of ids.slice(1)) leafnodes.push({ listener: HUB, connector: spoke });
  } else {
    // For each pair the lower id listens: one listen port per server, several remotes on the higher ones.
    for (const [i, listener] of ids.entries())
      for (const connector of ids.slice(i + 1)) leafnodes.push({ listener, connector });
  }
  const gateways = ids.map((id, i) => ({
    id,
    country: agencyOf(i).country,
    agency: agencyOf(i),
    partners: leafnodes.flatMap((l) =>
      l.listener === id ? [l.connector] : l.connector === id ? [l.listener] : [],
    ),
  }));
  const random = seededRandom(seed);
  const conversations = Array.from({ length: conversationCount }, (_, k) => {
    const a = Math.floor(random() * gatewayCount);
    const b = (a + 1 + Math.floor(random() * (gatewayCount - 1))) % gatewayCount;
    const from = ids[a] as string;
    const to = ids[b] as string;
    const via = nextHop(layout, from, to);
    return { name: `c${String(k)}`, path: via === to ? [from, to] : [from, via, to] };
  });
  return { layout, gateways, leafnodes, conversations };
}

export function gatewayOf(plan: FederationPlan, id: string): GatewayPlan {
  const gateway = plan.gateways.find((g) => g.id === id);
  if (gateway === undefined) throw new Error(`no gateway ${id}`);
  return gateway;
}

/**
 * A gateway's policy: its own agency, every other gateway's on federation/<next hop towards it>, and a
 * route (both ways) between its agency and each other. The hub routes between any two spokes as well.
 */
export function policyOf(plan: FederationPlan, self: string): Policy {
  const own = gatewayOf(plan, self).agency;
  const others = plan.gateways
    .filter((g) => g.id !== self)
    .map((g) => ({
      ...g.agency,
      network: FEDERATION_NETWORK,
      instance: nextHop(plan.layout, self, g.id),
    }));
  const routes: Route[] = others.map((a) => ({ from: own.id, to: a.id }));
  if (plan.layout === "hub-and-spoke" && self === HUB) {
    for (const [i, a] of others.entries())
      for (const b of others.slice(i + 1)) routes.push({ from: a.id, to: b.id });
  }
  return { agencies: [own, ...others], routes };
}

export function nativeEndpoint(plan: FederationPlan, self: string, conversation: string): Endpoint {
  return {
    ...NATIVE,
    conversation: `room-${conversation}@conference.police`,
    agency: gatewayOf(plan, self).agency.id,
  };
}

/**
 * A gateway's links: one per conversation it takes part in. An end joins its native room to the shared
 * conversation on its neighbour; the hub, in the middle, joins the two neighbours' shared conversations.
 * A federation endpoint carries the agency at the far end of the path in its direction.
 */
export function linksOf(plan: FederationPlan, self: string): Link[] {
  const links: Link[] = [];
  for (const { name, path } of plan.conversations) {
    const at = path.indexOf(self);
    if (at < 0) continue;
    const first = path[0] as string;
    const last = path[path.length - 1] as string;
    const endpoints: Endpoint[] = [];
    if (at === 0 || at === path.length - 1) endpoints.push(nativeEndpoint(plan, self, name));
    if (at > 0)
      endpoints.push({
        network: FEDERATION_NETWORK,
        instance: path[at - 1] as string,
        conversation: name,
        agency: gatewayOf(plan, first).agency.id,
      });
    if (at < path.length - 1)
      endpoints.push({
        network: FEDERATION_NETWORK,
        instance: path[at + 1] as string,
        conversation: name,
        agency: gatewayOf(plan, last).agency.id,
      });
    const [one, other, ...more] = endpoints;
    if (one === undefined || other === undefined)
      throw new Error(`conversation ${name} has one end at ${self}`);
    links.push({ id: name, endpoints: [one, other, ...more] });
  }
  return links;
}

/** The agencies a gateway's manifest gives it: its own, and for the hub every spoke's it relays. */
export function manifestAgenciesOf(
  plan: FederationPlan,
  self: string,
): { id: string; name: string; country: string }[] {
  const relays = plan.layout === "hub-and-spoke" && self === HUB;
  return plan.gateways
    .filter((g) => g.id === self || relays)
    .map(({ agency }) => ({ id: agency.id, name: agency.name, country: agency.country }));
}

/** Every approval the plan needs: both sides of every leafnode pair each conversation crosses. */
export function consentsToGive(plan: FederationPlan): ConsentToGive[] {
  return plan.conversations.flatMap(({ name, path }) =>
    path.slice(1).flatMap((to, i) => {
      const from = path[i] as string;
      return [
        { gateway: from, partner: to, conversation: name },
        { gateway: to, partner: from, conversation: name },
      ];
    }),
  );
}

/**
 * A gateway's partners as its nats-server config names them: who connects here with which credentials,
 * and where it connects itself. `leafPorts` holds each listener's leafnode port.
 */
export function natsPartnersOf(
  plan: FederationPlan,
  self: string,
  leafPorts: ReadonlyMap<string, number>,
  leafCredentials: (leafnode: Leafnode) => Credentials,
): FederationPartner[] {
  return plan.leafnodes.flatMap((leafnode): FederationPartner[] => {
    if (leafnode.listener === self) return [{ id: leafnode.connector, accepts: leafCredentials(leafnode) }];
    if (leafnode.connector !== self) return [];
    const port = leafPorts.get(leafnode.listener);
    if (port === undefined) throw new Error(`no leafnode port for ${leafnode.listener}`);
    return [
      {
        id: leafnode.listener,
        connects: { url: `nats-leaf://127.0.0.1:${String(port)}`, ...leafCredentials(leafnode) },
      },
    ];
  });
}
