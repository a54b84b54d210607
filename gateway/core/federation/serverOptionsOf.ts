/**
 * A gateway's nats-server federation settings, from the gateway's own config (federation.gateway, .partners,
 * .leafnode) and its partners' verified manifests (the keys to pin): the list of partners is written once,
 * in the config, and the server's accounts and leafnodes follow from it.
 */
import type { LeafnodeCredentials, LeafnodeRemote, PartnerManifest } from "../../../schemas/types.js";
import type { LoadedConfig } from "../../platform/config/loadConfig.js";
import { resolveSecret } from "../../platform/config/secrets.js";
import { ConfigError } from "../../../schemas/contract/errors.js";
import type { FederationPartner, FederationServerOptions } from "./federationAccounts.js";

export async function serverOptionsOf(
  loaded: LoadedConfig,
  manifests: readonly PartnerManifest[],
): Promise<FederationServerOptions> {
  const { config, file } = loaded;
  const federation = config.federation;
  if (federation?.gateway === undefined || federation.partners === undefined)
    throw new ConfigError(
      file,
      "/federation",
      "names no gateway and partners: this gateway does not federate",
    );
  const leafnode = federation.leafnode ?? {};
  if (config.nats.user === undefined || config.nats.password === undefined)
    throw new ConfigError(
      file,
      "/nats",
      "has no user and password: a federating gateway's server keeps its own account for them",
    );
  const partners: FederationPartner[] = [];
  for (const [i, id] of federation.partners.entries()) {
    const accepts = leafnode.accept?.[id];
    const connects = leafnode.connect?.[id];
    if ((accepts === undefined) === (connects === undefined))
      throw new ConfigError(
        file,
        `/federation/partners/${String(i)}`,
        `partner ${id} must be in exactly one of federation.leafnode.accept and federation.leafnode.connect`,
      );
    const manifest = manifests.find((m) => m.gateway.id === id);
    if (leafnode.tls !== undefined && manifest === undefined)
      throw new ConfigError(
        file,
        `/federation/partners/${String(i)}`,
        `partner ${id}'s keys are pinned from its manifest: give its signed manifest (--manifest)`,
      );
    const pinnedKeys = manifest?.pins.tlsPublicKeySha256 ?? [];
    const side = accepts === undefined ? "connect" : "accept";
    const credentials = (accepts ?? connects) as LeafnodeCredentials | LeafnodeRemote;
    const password = await resolveSecret(
      credentials.password,
      file,
      `/federation/leafnode/${side}/${id}/password`,
    );
    partners.push({
      id,
      pinnedKeys,
      ...(connects === undefined
        ? { accepts: { user: credentials.user, password } }
        : { connects: { url: connects.url, user: credentials.user, password } }),
    });
  }
  for (const id of [...Object.keys(leafnode.accept ?? {}), ...Object.keys(leafnode.connect ?? {})])
    if (!federation.partners.includes(id))
      throw new ConfigError(file, "/federation/leafnode", `names ${id}, which is not in federation.partners`);
  const listen = leafnode.listen?.match(/^(.+):(\d+)$/);
  return {
    self: federation.gateway,
    gateway: {
      user: config.nats.user,
      password: await resolveSecret(config.nats.password, file, "/nats/password"),
    },
    partners,
    ...(listen === null || listen === undefined
      ? {}
      : { leafnodeListen: { host: listen[1] ?? "", port: Number(listen[2]) } }),
    ...(leafnode.tls === undefined ? {} : { tls: leafnode.tls }),
  };
}
