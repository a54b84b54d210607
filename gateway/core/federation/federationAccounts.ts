/**
 * The nats-server accounts that keep a gateway's bus its own while it federates. The gateway's core and
 * bridges live in the FEDGATE account, with its streams and KV; each partner gateway gets an account of its
 * own (PARTNER_<ID>), and the leafnode connection to that partner is bound to it. FEDGATE exports to that
 * account only what this gateway sends the partner (fedgate.v1.federation.<self>.<partner>.>) and imports
 * from it only what the partner sends this gateway (fedgate.v1.federation.<partner>.<self>.>): nothing else
 * of the bus, no JetStream API, no other partner's subjects cross. Both gateways of a pair run this, so
 * neither has to trust how the other configured its side.
 */
import { subjects } from "../../../schemas/contract/subjects.js";
import { PermanentError } from "../../../schemas/contract/errors.js";

/** The account core and bridges connect to. */
export const GATEWAY_ACCOUNT = "FEDGATE";

export interface Credentials {
  user: string;
  password: string;
}

/** This gateway's side of TLS on its leafnodes: PEM files. */
export interface LeafnodeTls {
  certFile: string;
  keyFile: string;
  /** The CA partners' certificates are checked against (a chain is not enough: keys are pinned too). */
  caFile: string;
}

/** One partner gateway and how the leafnode between the two is made. */
export interface FederationPartner {
  /** The partner gateway's id, as its manifest names it (a Token). */
  id: string;
  /**
   * The keys the partner's certificates may carry (its manifest's pins.tlsPublicKeySha256): with TLS, a
   * certificate the CA signed for another key is refused.
   */
  pinnedKeys?: readonly string[];
  /** The partner connects to this gateway's leafnode port with these credentials... */
  accepts?: Credentials;
  /** ...or this gateway connects to the partner's, e.g. nats-leaf://127.0.0.1:7422. */
  connects?: { url: string } & Credentials;
}

export interface FederationServerOptions {
  /** This gateway's id: its JetStream domain, and the first part of what it sends. */
  self: string;
  /** Who may use the FEDGATE account: the core and the bridges. */
  gateway: Credentials;
  partners: readonly FederationPartner[];
  /** Where partners connect, when any does. */
  leafnodeListen?: { host: string; port: number };
  /** TLS on every leafnode, with each partner's keys pinned; without it, plain TCP (tests, one host). */
  tls?: LeafnodeTls;
  /**
   * Clients that give no credentials act as the gateway user: only for a demo whose server listens on
   * loopback, so that `fedgate events tail --nats URL` works there as it does without federation.
   */
  noAuthUser?: boolean;
}

/** The account a partner's leafnode is bound to, e.g. PARTNER_FR for "fr". */
export function partnerAccount(partner: string): string {
  return `PARTNER_${partner.toUpperCase().replace(/-/g, "_")}`;
}

function leafUrl(connects: { url: string } & Credentials): string {
  const url = new URL(connects.url);
  url.username = encodeURIComponent(connects.user);
  url.password = encodeURIComponent(connects.password);
  return url.toString();
}

/**
 * The accounts, JetStream domain and leafnodes of a gateway's nats-server, as config text (JSON, which
 * nats-server's config format reads). Listening address, store folder and the like stay on the command line.
 */
export function federationServerConfig(options: FederationServerOptions): string {
  const { self, partners } = options;
  const accounts: Record<string, unknown> = {
    [GATEWAY_ACCOUNT]: {
      jetstream: "enabled",
      users: [options.gateway],
      exports: partners.map((p) => ({
        stream: subjects.federation(self, p.id),
        accounts: [partnerAccount(p.id)],
      })),
      imports: partners.map((p) => ({
        stream: { account: partnerAccount(p.id), subject: subjects.federation(p.id, self) },
      })),
    },
  };
  for (const p of partners) {
    accounts[partnerAccount(p.id)] = {
      users: p.accepts === undefined ? [] : [p.accepts],
      exports: [{ stream: subjects.federation(p.id, self), accounts: [GATEWAY_ACCOUNT] }],
      imports: [{ stream: { account: GATEWAY_ACCOUNT, subject: subjects.federation(self, p.id) } }],
    };
  }
  const { tls } = options;
  const pinsOf = (p: FederationPartner): readonly string[] => {
    if (p.pinnedKeys === undefined || p.pinnedKeys.length === 0)
      throw new PermanentError("FG_CONFIG_INVALID", `federation partner ${p.id} has no pinned keys for TLS`);
    return p.pinnedKeys;
  };
  /** TLS towards `pinned`: their keys pinned; none without TLS. */
  const tlsBlock = (pinned: readonly FederationPartner[]): Record<string, unknown> | undefined =>
    tls === undefined
      ? undefined
      : {
          cert_file: tls.certFile,
          key_file: tls.keyFile,
          ca_file: tls.caFile,
          pinned_certs: pinned.flatMap(pinsOf),
        };
  const remotes = partners.flatMap((p) => {
    if (p.connects === undefined) return [];
    // nats-server 2.9 checks pinned_certs only on connections it accepts: here the partner's certificate
    // is checked against the CA alone (see leafnodeProbe), and the pins take effect with a server that
    // checks them.
    const secured = tlsBlock([p]);
    return [{ url: leafUrl(p.connects), account: partnerAccount(p.id), ...(secured && { tls: secured }) }];
  });
  // Partners that connect here present a certificate, checked against the CA and every accepted partner's keys.
  const listenTls = tlsBlock(partners.filter((p) => p.accepts !== undefined));
  const leafnodes = {
    ...(options.leafnodeListen === undefined
      ? {}
      : {
          listen: `${options.leafnodeListen.host}:${String(options.leafnodeListen.port)}`,
          ...(listenTls && { tls: { ...listenTls, verify: true } }),
        }),
    ...(remotes.length === 0 ? {} : { remotes }),
  };
  const noAuth = options.noAuthUser === true ? { no_auth_user: options.gateway.user } : {};
  return `${JSON.stringify({ jetstream: { domain: self }, accounts, leafnodes, ...noAuth }, null, 2)}\n`;
}
