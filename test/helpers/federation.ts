/**
 * Gateways that federate, on 127.0.0.1: each its own nats-server (accounts and leafnodes as
 * federationServerConfig makes them), its own core with its own policy, audit and admin API, its own issuing
 * authority that signs its manifest, and recording adapters standing in for its native networks.
 */
import type { ConfigInput } from "../harness/configInput.js";
import { generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import type {
  AuditRecord,
  Config,
  Endpoint,
  Link,
  PartnerManifest,
  Policy,
  SignedPartnerManifest,
} from "../../schemas/types.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { loadConfig } from "../../gateway/platform/config/loadConfig.js";
import { subjects } from "../../schemas/contract/subjects.js";
import type { LocalNatsServer } from "../harness/servers/LocalNatsServer.js";
import { freePort } from "../harness/servers/serverProcess.js";
import { grantKeyText } from "../../gateway/core/federation/consentGrant.js";
import {
  federationServerConfig,
  type FederationPartner,
} from "../../gateway/core/federation/federationAccounts.js";
import { signManifest } from "../../gateway/core/federation/partnerManifest.js";
import { GatewayService } from "../../gateway/core/GatewayService.js";
import type { Consent } from "../../gateway/core/federation/ConsentStore.js";
import { createLogger } from "../../gateway/platform/log.js";
import { auditRecordsIn, eventually } from "./fixtures.js";
import { startNatsOrSkip } from "./nats.js";
import { RecordingAdapter } from "./RecordingAdapter.js";
import { scratchDir } from "./scratchDir.js";

const pem = (key: KeyObject): string =>
  key.export({ type: key.type === "private" ? "pkcs8" : "spki", format: "pem" }).toString();

/** The conversation "Lage" as each of the federation tests' networks names it. */
export const xmppRoom: Endpoint = {
  network: "xmpp",
  instance: "bpol",
  conversation: "lage@conference.bpol",
  agency: "bpol",
};
export const stashcatChannel: Endpoint = {
  network: "stashcat",
  instance: "ni",
  conversation: "channel:7",
  agency: "polizei-ni",
};
export const tchapRoom: Endpoint = {
  network: "matrix",
  instance: "tchap",
  conversation: "!lage:tchap",
  agency: "dinum-mi",
};

export interface GatewaySpec {
  id: string;
  country: string;
  /** This gateway's policy: its own agencies, its partners' agencies on network federation, instance <partner>. */
  policy: Policy;
  links: Link[];
  /** The agencies its manifest gives it (by default every agency of its policy on a native network). */
  manifestAgencies?: PartnerManifest["agencies"];
}

export interface Credentials {
  user: string;
  password: string;
}

export class GatewayUnderTest {
  readonly audit: AuditRecord[] = [];
  private readonly adapters: RecordingAdapter[] = [];
  service: GatewayService | undefined;
  client: JetStreamBus | undefined;

  constructor(
    readonly spec: GatewaySpec,
    readonly nats: LocalNatsServer,
    readonly core: Credentials,
    readonly authority: { privateKey: KeyObject; publicKey: KeyObject },
    readonly grantKey: { privateKey: KeyObject; publicKey: KeyObject },
    readonly configFile: string,
  ) {}

  get id(): string {
    return this.spec.id;
  }

  /** Its manifest, signed by its own authority. */
  manifest(overrides: Partial<PartnerManifest> = {}): SignedPartnerManifest {
    const now = Date.now();
    return signManifest(
      {
        version: 1,
        gateway: { id: this.id, country: this.spec.country, name: `Gateway ${this.id}` },
        issuedAt: new Date(now - 60_000).toISOString(),
        expiresAt: new Date(now + 365 * 24 * 3600 * 1000).toISOString(),
        agencies:
          this.spec.manifestAgencies ??
          this.spec.policy.agencies
            .filter((a) => a.network !== "federation")
            .map((a) => ({ id: a.id, name: a.name, country: a.country })),
        endpoints: { leafnode: `nats-leaf://127.0.0.1:7422` },
        pins: { tlsPublicKeySha256: [randomBytes(32).toString("hex")] },
        grantKeys: [grantKeyText(this.grantKey.publicKey)],
        ...overrides,
      },
      this.authority.privateKey,
    );
  }

  async start(): Promise<void> {
    const log = createLogger("silent");
    this.service = await GatewayService.start(await loadConfig(this.configFile, {}), log);
    this.client = await JetStreamBus.connect({
      servers: this.nats.url,
      user: this.core.user,
      password: this.core.password,
      log,
      name: `test-${this.id}`,
    });
    await this.client.follow("FEDGATE_AUDIT", subjects.auditAll, "start", (m) =>
      this.audit.push(...auditRecordsIn(m.data)),
    );
  }

  /** Another core replica of this gateway, as a second pod would run; stop it with its stop(). */
  async replica(): Promise<GatewayService> {
    return GatewayService.start(await loadConfig(this.configFile, {}), createLogger("silent"));
  }

  async adapter(network: string, instance: string): Promise<RecordingAdapter> {
    if (this.client === undefined) throw new Error(`gateway ${this.id} is not started`);
    const adapter = await RecordingAdapter.open(this.client, network, instance);
    this.adapters.push(adapter);
    return adapter;
  }

  /** Calls the admin API with the gateway's token; resolves with the status and the parsed body. */
  async admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${this.service?.adminUrl ?? ""}${path}`, {
      method,
      headers: {
        authorization: `Bearer admin-${this.id}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
  }

  /** A shared conversation's consent as this gateway's admin API shows it, if any. */
  async consent(partner: string, conversation: string): Promise<Consent | undefined> {
    const { status, body } = await this.admin("GET", `/v1/consents/${partner}/${conversation}`);
    return status === 200 ? (body as Consent) : undefined;
  }

  /** Audit records of one event, as this gateway decided them. */
  decisionsOn(eventId: string): AuditRecord[] {
    return this.audit.filter((r) => r.eventId === eventId);
  }

  async stop(): Promise<void> {
    await Promise.all(this.adapters.map((a) => a.runtime.close()));
    await this.client?.close();
    await this.service?.stop();
  }
}

/**
 * Two gateways: `accepting` listens for the leafnode, `connecting` dials it. Each trusts the other's
 * authority, holds the other's manifest and has the other as its partner. Undefined when nats-server is
 * missing (see servers.ts).
 */
export async function startGatewayPair(
  accepting: GatewaySpec,
  connecting: GatewaySpec,
): Promise<[GatewayUnderTest, GatewayUnderTest] | undefined> {
  const leafPort = await freePort();
  const leaf: Credentials = { user: `${connecting.id}-leaf`, password: randomBytes(12).toString("hex") };
  const keys = () => generateKeyPairSync("ed25519");
  const authorities = [keys(), keys()] as const;
  const specs = [accepting, connecting] as const;
  const partnersOf: [FederationPartner[], FederationPartner[]] = [
    [{ id: connecting.id, accepts: leaf }],
    [{ id: accepting.id, connects: { url: `nats-leaf://127.0.0.1:${String(leafPort)}`, ...leaf } }],
  ];
  const gateways: GatewayUnderTest[] = [];
  for (const [i, spec] of specs.entries()) {
    const core: Credentials = { user: "core", password: randomBytes(12).toString("hex") };
    const nats = await startNatsOrSkip({
      config: federationServerConfig({
        self: spec.id,
        gateway: core,
        partners: partnersOf[i] ?? [],
        ...(i === 0 ? { leafnodeListen: { host: "127.0.0.1", port: leafPort } } : {}),
      }),
    });
    if (nats === undefined) return undefined;
    const grantKey = keys();
    const partner = specs[1 - i] as GatewaySpec;
    const dir = await scratchDir(`federation-${spec.id}`);
    const config: ConfigInput<Config> = {
      nats: { url: nats.url, user: core.user, password: { value: core.password } },
      gateway: { policy: spec.policy, ackWaitMs: 2000 },
      admin: { host: "127.0.0.1", port: 0, token: { value: `admin-${spec.id}` } },
      log: { level: "warn" },
      links: spec.links,
      federation: {
        authorities: [{ value: pem((authorities[1 - i] as { publicKey: KeyObject }).publicKey) }],
        gateway: spec.id,
        signingKey: { value: pem(grantKey.privateKey) },
        partners: [partner.id],
      },
    };
    const configFile = join(dir, "config.yaml");
    await writeFile(configFile, stringify(config));
    gateways.push(
      new GatewayUnderTest(spec, nats, core, authorities[i] as (typeof authorities)[0], grantKey, configFile),
    );
  }
  const [a, b] = gateways as [GatewayUnderTest, GatewayUnderTest];
  await Promise.all([a.start(), b.start()]);
  for (const [holder, other] of [
    [a, b],
    [b, a],
  ] as const) {
    const put = await holder.admin("PUT", `/v1/partners/${other.id}/manifest`, other.manifest());
    if (put.status !== 200) throw new Error(`manifest of ${other.id} refused: ${JSON.stringify(put.body)}`);
  }
  return [a, b];
}

/** Both gateways' admins approve a shared conversation; resolves once both see it active. */
export async function consentOnBothSides(
  a: GatewayUnderTest,
  b: GatewayUnderTest,
  conversation: string,
): Promise<void> {
  for (const [holder, partner] of [
    [a, b],
    [b, a],
  ] as const) {
    const put = await holder.admin("PUT", `/v1/consents/${partner.id}/${conversation}`, {
      approvedBy: `${holder.id} duty officer`,
    });
    if (put.status !== 200) throw new Error(`${holder.id} could not approve ${conversation}: ${put.status}`);
  }
  for (const [holder, partner] of [
    [a, b],
    [b, a],
  ] as const)
    await eventually(
      async () => ((await holder.consent(partner.id, conversation))?.state === "active" ? true : undefined),
      15_000,
      `${conversation} active at ${holder.id}`,
    );
}
