/**
 * The local demo federation: two gateways, each its own country's, as partners run them. Germany's gateway
 * (its nats-server, core and policy, with the XMPP and Stashcat bridges) and France's (its own nats-server,
 * core and policy, with the Matrix bridge) are joined by a leafnode with TLS and pinned keys; each holds the
 * other's manifest, signed by the other's issuing authority, and both admins have consented to one shared
 * conversation. Each bridge adds its server and accounts here. Everything listens on 127.0.0.1; demo.json
 * describes it for people and scripts.
 */
import type { ConfigInput } from "../configInput.js";
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse, stringify } from "yaml";
import type { Config, Endpoint, Link, Policy } from "../../../schemas/types.js";
import { schemaDir, validatePolicy } from "../../../schemas/contract/schemas.js";
import { FEDERATION_NETWORK } from "../../../schemas/contract/subjects.js";
import { loadConfig, type LoadedConfig } from "../../../gateway/platform/config/loadConfig.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { grantKeyText } from "../../../gateway/core/federation/consentGrant.js";
import {
  federationServerConfig,
  type FederationPartner,
} from "../../../gateway/core/federation/federationAccounts.js";
import { signManifest } from "../../../gateway/core/federation/partnerManifest.js";
import { GatewayService } from "../../../gateway/core/GatewayService.js";
import { startTelemetry, stopTelemetry } from "../../../gateway/platform/telemetry.js";
import type { Logger } from "../../../gateway/platform/log.js";
import { loadBridge } from "../../../bridges/index.js";
import { demoParts, type DemoAccount, type DemoOptions, type DemoPart } from "./demoParts.js";
import { localCa } from "./localCertificates.js";
import { LocalNatsServer } from "../servers/LocalNatsServer.js";
import { freePort } from "../servers/serverProcess.js";

/** One of the demo's gateways, as demo.json describes it. */
export interface DemoGateway {
  id: string;
  country: string;
  nats: { url: string };
  admin: { url: string; token: string };
  /** The console for agency admins, and the token of one agency of its link (admin.agencyTokens). */
  console: { url: string; agency: string; token: string };
  configFile: string;
  policyFile: string;
  /** Its manifest as its authority signed it: what the partner holds. */
  manifestFile: string;
  /** The networks its bridges serve. */
  networks: string[];
  links: Link[];
}

/** What demo.json holds: enough for a script to drive the demo. */
export interface DemoDescription {
  dir: string;
  gateways: DemoGateway[];
  /** Where the gateways' leafnode connects them. */
  leafnode: { url: string };
  /** The conversation both gateways share, and its consent on each side. */
  shared: { conversation: string; consent: Record<string, string> };
  /** Each bridge's servers, by name. */
  servers: Record<string, string>;
  accounts: DemoAccount[];
  try: { description: string; command: string }[];
}

/** The demo's cross-border operations room, as one conversation across three networks. */
export const demoLink: Link = {
  id: "demo-einsatz",
  description:
    "Cross-border operations room: Bundespolizei (XMPP), Polizei Niedersachsen (Stashcat), Ministère de l'Intérieur (Tchap)",
  endpoints: [
    { network: "xmpp", instance: "bpol", conversation: "einsatz@conference.bpol.localhost", agency: "bpol" },
    { network: "stashcat", instance: "ni", conversation: "channel:1001", agency: "polizei-ni" },
    // The demo's Synapse gives the room its id when it creates it.
    { network: "matrix", instance: "tchap", conversation: "!einsatz:tchap.localhost", agency: "dinum-mi" },
  ],
};

/** The demo's gateways: the policy and manifest each starts from (schemas/examples). */
const demoGateways = [
  { id: "de", country: "DE", policy: "policy-de.yaml", manifest: "manifest-de.yaml" },
  { id: "fr", country: "FR", policy: "policy-fr.yaml", manifest: "manifest-fr.yaml" },
] as const;

/** The networks a gateway's policy puts its own agencies on: the bridges it runs. */
function ownNetworks(policy: Policy): Set<string> {
  return new Set(policy.agencies.map((a) => a.network).filter((network) => network !== FEDERATION_NETWORK));
}

/**
 * A gateway's side of the demo link: its own networks' conversations (with the room ids the demo servers
 * gave them), and for each partner the shared conversation, owned there by the first of the partner's
 * agencies in the link.
 */
function linkOf(
  own: Set<string>,
  partners: { id: string; networks: Set<string> }[],
  roomOf: (network: string) => string | undefined,
): Link {
  return {
    ...demoLink,
    endpoints: [
      ...demoLink.endpoints
        .filter((e) => own.has(e.network))
        .map((e): Endpoint => ({ ...e, conversation: roomOf(e.network) ?? e.conversation })),
      ...partners.map((partner): Endpoint => {
        const owner = demoLink.endpoints.find((e) => partner.networks.has(e.network));
        if (owner === undefined)
          throw new PermanentError(
            "FG_CONFIG_INVALID",
            `the demo link has no conversation of gateway ${partner.id}`,
          );
        return {
          network: FEDERATION_NETWORK,
          instance: partner.id,
          conversation: demoLink.id,
          agency: owner.agency,
        };
      }),
    ] as Link["endpoints"],
  };
}

/**
 * A bridge's demo config with the other bridges' file servers added to its attachments.hosts: everything runs
 * on loopback, which a bridge fetches files from only when its config lists the host.
 */
function withFileServers(part: DemoPart, parts: [string, DemoPart][]): Record<string, unknown> {
  const attachments = (part.config["attachments"] ?? {}) as { hosts?: string[] };
  const others = parts.filter(([, other]) => other !== part).flatMap(([, other]) => other.fileServers);
  return {
    ...part.config,
    attachments: { ...attachments, hosts: [...(attachments.hosts ?? []), ...others] },
  };
}

const pem = (key: KeyObject): string =>
  key.export({ type: key.type === "private" ? "pkcs8" : "spki", format: "pem" }).toString();

async function writeKey(file: string, key: KeyObject): Promise<string> {
  await writeFile(file, pem(key), { mode: 0o600 });
  return file;
}

async function callAdmin(
  gateway: DemoGateway,
  method: "GET" | "PUT",
  path: string,
  body?: unknown,
): Promise<unknown> {
  const response = await fetch(`${gateway.admin.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${gateway.admin.token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = await response.json();
  if (!response.ok)
    throw new PermanentError(
      "FG_SERVER_START_FAILED",
      `gateway ${gateway.id} refused ${method} ${path}: ${JSON.stringify(answer)}`,
    );
  return answer;
}

export class DemoFederation {
  private constructor(
    readonly description: DemoDescription,
    /** Everything started, stopped in reverse order. */
    private readonly stops: (() => Promise<void>)[],
  ) {}

  static async start(log: Logger, dir?: string, options: DemoOptions = {}): Promise<DemoFederation> {
    const workDir = resolve(dir ?? (await mkdtemp(join(tmpdir(), "fedgate-demo-"))));
    await mkdir(join(workDir, "keys"), { recursive: true, mode: 0o700 });
    const stops: (() => Promise<void>)[] = [];
    // One process runs the whole demo: its metrics are on every admin and bridge status port, and traces go
    // to OTEL_EXPORTER_OTLP_ENDPOINT when set.
    startTelemetry({ serviceName: "fedgate-demo" });
    stops.push(stopTelemetry);
    try {
      const policies = await Promise.all(
        demoGateways.map(async (g) => {
          const file = join(workDir, g.policy);
          await copyFile(join(schemaDir, "examples", g.policy), file);
          const policy = validatePolicy(parse(await readFile(file, "utf8")));
          return { file, networks: ownNetworks(policy) };
        }),
      );
      const parts: [string, DemoPart][] = [];
      for (const [network, startDemo] of Object.entries(demoParts)) {
        process.stdout.write(`fedgate demo: starting the ${network} side…\n`);
        const part = await startDemo(workDir, log, options);
        stops.push(() => part.stop());
        parts.push([network, part]);
      }
      const roomOf = (network: string): string | undefined =>
        parts.find(([n]) => n === network)?.[1].conversation;

      // The leafnode: Germany listens, France connects; TLS both ways, each side's certificate key pinned.
      process.stdout.write("fedgate demo: starting both gateways' nats-servers, joined by a leafnode…\n");
      const ca = await localCa(join(workDir, "keys"));
      const certificates = await Promise.all(demoGateways.map((g) => ca.issue(`leafnode-${g.id}`)));
      const leafPort = await freePort();
      const leafUrl = `nats-leaf://127.0.0.1:${String(leafPort)}`;
      const leaf = { user: "leafnode", password: randomBytes(18).toString("base64url") };
      const authorities = demoGateways.map(() => generateKeyPairSync("ed25519"));
      const grantKeys = demoGateways.map(() => generateKeyPairSync("ed25519"));

      const gateways: DemoGateway[] = [];
      const loaded: LoadedConfig[] = [];
      for (const [i, g] of demoGateways.entries()) {
        const partnerIndex = 1 - i;
        const partner = demoGateways[partnerIndex] as (typeof demoGateways)[number];
        const certificate = certificates[i];
        const partnerPins = [certificates[partnerIndex]?.pin ?? ""];
        const core = { user: "core", password: randomBytes(18).toString("base64url") };
        const link: FederationPartner =
          i === 0
            ? { id: partner.id, accepts: leaf, pinnedKeys: partnerPins }
            : { id: partner.id, connects: { url: leafUrl, ...leaf }, pinnedKeys: partnerPins };
        const nats = await LocalNatsServer.start({
          storeDir: join(workDir, `nats-${g.id}`),
          config: federationServerConfig({
            self: g.id,
            gateway: core,
            partners: [link],
            ...(i === 0 ? { leafnodeListen: { host: "127.0.0.1", port: leafPort } } : {}),
            tls: {
              certFile: certificate?.certFile ?? "",
              keyFile: certificate?.keyFile ?? "",
              caFile: ca.caFile,
            },
            noAuthUser: true,
          }),
        });
        stops.push(() => nats.stop());

        const keys = join(workDir, "keys");
        const partnerAuthority = await writeKey(
          join(keys, `authority-${partner.id}.pub`),
          (authorities[partnerIndex] as { publicKey: KeyObject }).publicKey,
        );
        const signingKey = await writeKey(
          join(keys, `grants-${g.id}.key`),
          (grantKeys[i] as { privateKey: KeyObject }).privateKey,
        );
        const networks = policies[i]?.networks ?? new Set<string>();
        const shared = linkOf(
          networks,
          [{ id: partner.id, networks: policies[partnerIndex]?.networks ?? new Set() }],
          roomOf,
        );
        // Germany's agencies own the conversation, so its gateway orders it; France's follows that order.
        const links = [i === 0 ? shared : { ...shared, orderedBy: partner.id }];
        const token = randomBytes(24).toString("base64url");
        const consoleAgency = links[0]?.endpoints.find((e) => e.network !== FEDERATION_NETWORK)?.agency ?? "";
        const consoleToken = randomBytes(24).toString("base64url");
        const ownParts = parts.filter(([network]) => networks.has(network));
        const config: ConfigInput<Config> = {
          nats: { url: nats.url, user: core.user, password: { value: core.password } },
          gateway: { policyFile: demoGateways[i]?.policy ?? "", ackWaitMs: 5000 },
          admin: {
            host: "127.0.0.1",
            port: 0,
            token: { value: token },
            agencyTokens: { [consoleAgency]: { value: consoleToken } },
          },
          log: { level: "info" },
          links,
          federation: {
            authorities: [{ file: partnerAuthority }],
            gateway: g.id,
            signingKey: { file: signingKey },
            partners: [partner.id],
          },
          bridges: Object.fromEntries(
            ownParts.map(([network, part]) => [network, withFileServers(part, parts)]),
          ),
        };
        const configFile = join(workDir, `config-${g.id}.yaml`);
        await writeFile(configFile, stringify(config), { mode: 0o600 });
        loaded.push(await loadConfig(configFile, {}));

        // Its manifest, as its authority signs it: the example's agencies and equivalences, this run's keys.
        const example = parse(await readFile(join(schemaDir, "examples", g.manifest), "utf8")) as Record<
          string,
          unknown
        >;
        const now = Date.now();
        const signed = signManifest(
          {
            ...example,
            issuedAt: new Date(now - 60_000).toISOString(),
            expiresAt: new Date(now + 30 * 24 * 3600 * 1000).toISOString(),
            endpoints: { leafnode: leafUrl },
            pins: { tlsPublicKeySha256: [certificate?.pin ?? ""] },
            grantKeys: [grantKeyText((grantKeys[i] as { publicKey: KeyObject }).publicKey)],
          },
          (authorities[i] as { privateKey: KeyObject }).privateKey,
        );
        const manifestFile = join(workDir, `manifest-${g.id}.signed.json`);
        await writeFile(manifestFile, `${JSON.stringify(signed, null, 2)}\n`);
        gateways.push({
          id: g.id,
          country: g.country,
          nats: { url: nats.url },
          admin: { url: "", token },
          console: { url: "", agency: consoleAgency, token: consoleToken },
          configFile,
          policyFile: policies[i]?.file ?? "",
          manifestFile,
          networks: [...networks],
          links,
        });
      }

      process.stdout.write("fedgate demo: starting both gateways and their bridges…\n");
      for (const [i, gateway] of gateways.entries()) {
        const config = loaded[i] as LoadedConfig;
        const service = await GatewayService.start(config, log);
        stops.push(() => service.stop());
        gateway.admin.url = service.adminUrl ?? "";
        gateway.console.url = `${gateway.admin.url}/console/`;
        for (const network of gateway.networks) {
          const bridge = await loadBridge(network);
          stops.push(await bridge.run(config, log));
        }
      }

      // Each holds the other's manifest; then both admins approve the shared conversation.
      const [de, fr] = gateways as [DemoGateway, DemoGateway];
      const pairs = [
        [de, fr],
        [fr, de],
      ] as const;
      for (const [holder, other] of pairs) {
        const signed = JSON.parse(await readFile(other.manifestFile, "utf8")) as unknown;
        await callAdmin(holder, "PUT", `/v1/partners/${other.id}/manifest`, signed);
      }
      for (const [holder, other] of pairs)
        await callAdmin(holder, "PUT", `/v1/consents/${other.id}/${demoLink.id}`, {
          approvedBy: `demo admin of ${holder.id}`,
        });
      const consent: Record<string, string> = {};
      const deadline = Date.now() + 30_000;
      for (const [holder, other] of pairs) {
        for (;;) {
          const { state } = (await callAdmin(holder, "GET", `/v1/consents/${other.id}/${demoLink.id}`)) as {
            state: string;
          };
          consent[holder.id] = state;
          if (state === "active") break;
          if (Date.now() > deadline)
            throw new PermanentError(
              "FG_SERVER_START_FAILED",
              `the shared conversation is still ${state} at gateway ${holder.id}`,
            );
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }

      const cli = "npx fedgate";
      const [xmpp, stashcat] = demoLink.endpoints;
      const description: DemoDescription = {
        dir: workDir,
        gateways,
        leafnode: { url: leafUrl },
        shared: { conversation: demoLink.id, consent },
        servers: Object.assign({}, ...parts.map(([, part]) => part.servers)) as Record<string, string>,
        accounts: parts.flatMap(([, part]) => part.accounts),
        try: [
          ...gateways.flatMap((g) => [
            {
              description: `follow ${g.id}'s deliveries`,
              command: `${cli} events tail outbound --nats ${g.nats.url}`,
            },
            {
              description: `follow ${g.id}'s own policy decisions`,
              command: `${cli} events tail audit --nats ${g.nats.url}`,
            },
          ]),
          ...parts.flatMap(([, part]) => part.try),
          {
            description:
              "an allowed message, as if Bundespolizei had written in the linked room: Germany releases it, France accepts it",
            command: `${cli} events send --nats ${de.nats.url} --from xmpp/bpol/${xmpp.conversation} --sender officer@bpol.localhost --name "Kommissarin Weber" --text "Lagebesprechung 14 Uhr"`,
          },
          {
            description:
              "a caveat that never leaves Germany: NUR FÜR DEUTSCHE is denied to France by Germany's own gateway",
            command: `${cli} events send --nats ${de.nats.url} --from xmpp/bpol/${xmpp.conversation} --sender officer@bpol.localhost --name "Kommissarin Weber" --marking DE-VS-NFD-NUR-DE --text "Nur für deutsche Stellen"`,
          },
          {
            description:
              "a denied one: VS-NfD from Niedersachsen may not reach France (that route is unmarked only)",
            command: `${cli} events send --nats ${de.nats.url} --from stashcat/ni/${stashcat.conversation} --sender 4711 --name "POK Meyer" --marking DE-VS-NFD --text "Nur für den Dienstgebrauch"`,
          },
          ...gateways.map((g) => ({
            description: `the shared conversation's consent as ${g.id} sees it (DELETE revokes it)`,
            command: `curl -s -H "Authorization: Bearer ${g.admin.token}" ${g.admin.url}/v1/consents`,
          })),
        ],
      };
      await writeFile(join(workDir, "demo.json"), JSON.stringify(description, null, 2) + "\n", {
        mode: 0o600,
      });
      return new DemoFederation(description, stops);
    } catch (error) {
      await DemoFederation.stopAll(stops);
      throw error;
    }
  }

  private static async stopAll(stops: (() => Promise<void>)[]): Promise<void> {
    for (const stop of [...stops].reverse()) await stop().catch(() => undefined);
  }

  get descriptionFile(): string {
    return join(this.description.dir, "demo.json");
  }

  async stop(): Promise<void> {
    await DemoFederation.stopAll(this.stops);
  }
}
