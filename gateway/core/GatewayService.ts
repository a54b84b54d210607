/**
 * The routing core as a running service: connects the bus, loads policy and stores, consumes every inbound
 * partition, and serves the admin API. Any number of replicas may run; they share the partitions.
 */
import { type KeyObject, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { Config } from "../../schemas/types.js";
import { type Bus, PULL_WINDOW_MS, type Subscription } from "../platform/bus/Bus.js";
import { connectBus } from "../platform/bus/connectBus.js";
import { resolveSecret } from "../platform/config/secrets.js";
import { buckets, horizonBuckets } from "../../schemas/contract/topology.js";
import { type LoadedConfig, policySource } from "../platform/config/loadConfig.js";
import { conversationOf } from "./routing/conversationOf.js";
import { leaseTimings, PartitionLeases } from "./routing/PartitionLeases.js";
import { PARTITIONS, subjects } from "../../schemas/contract/subjects.js";
import { ConfigError, FedgateError } from "../../schemas/contract/errors.js";
import { FederationGate } from "./federation/FederationGate.js";
import { PartnerLink } from "./federation/PartnerLink.js";
import { HeldDeliveries } from "./routing/HeldDeliveries.js";
import { privateKeyFrom, publicKeyFrom } from "./federation/partnerManifest.js";
import { ConsentStore } from "./federation/ConsentStore.js";
import { listenAdminApi } from "./admin/AdminApi.js";
import { BridgeStatuses } from "./admin/console/BridgeStatuses.js";
import { ConsoleFeed } from "./admin/console/ConsoleFeed.js";
import { consoleRouter } from "./admin/console/consoleRouter.js";
import type { HttpListener } from "../platform/http/HttpListener.js";
import { PolicyEngine } from "./policy/PolicyEngine.js";
import { Router } from "./routing/Router.js";
import { DeliveryLedger } from "./routing/DeliveryLedger.js";
import { DeliveryFailures } from "./routing/DeliveryFailures.js";
import { UnsupportedDeliveries } from "./routing/UnsupportedDeliveries.js";
import { MessageMap } from "../platform/stores/MessageMap.js";
import { IdentityStore } from "../platform/stores/IdentityStore.js";
import { JoinCodeStore } from "../platform/stores/JoinCodeStore.js";
import { LinkStore } from "../platform/stores/LinkStore.js";
import { PartnerManifestStore } from "./federation/PartnerManifestStore.js";

/** How long /readyz waits for NATS to answer: well within a readiness probe's timeout (the chart's is 3 s). */
const READY_ROUND_TRIP_MS = 1000;
/** Events of one partition in work at once (each of a different conversation). */
const PARTITION_CONCURRENCY = 32;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Sets the message horizon and size limit on the buckets that remember what became of each message. Bridges
 * open the message map without limits, which leaves these be; so the gateway's config alone decides them.
 */
export async function limitMessageStores(bus: Bus, gateway: Config["gateway"]): Promise<void> {
  const limits = {
    ttlMs: Math.round(gateway.messageHorizonDays * DAY_MS),
    maxBytes: gateway.messageStoreMaxBytes,
  };
  for (const bucket of horizonBuckets) await bus.keyValue(bucket, limits);
}

export async function loadPolicy(loaded: LoadedConfig): Promise<PolicyEngine> {
  const source = policySource(loaded);
  return "policy" in source
    ? new PolicyEngine(source.policy, source.file, "/gateway/policy")
    : PolicyEngine.fromFile(source.policyFile);
}

/** Links and agency admins' tokens in the config must name declared agencies; checked before anything starts. */
export function checkDeclaredLinks(config: Config, file: string, policy: PolicyEngine): void {
  for (const agency of Object.keys(config.admin?.agencyTokens ?? {}))
    if (policy.agency(agency) === undefined)
      throw new ConfigError(
        file,
        `/admin/agencyTokens/${agency}`,
        `agency ${agency} is not declared in the policy`,
      );
  for (const [i, link] of config.links.entries()) {
    for (const [j, endpoint] of link.endpoints.entries()) {
      if (policy.agency(endpoint.agency) === undefined) {
        throw new ConfigError(
          file,
          `/links/${i}/endpoints/${j}/agency`,
          `agency ${endpoint.agency} is not declared in the policy`,
        );
      }
    }
  }
}

/** admin.agencyTokens resolved (checkDeclaredLinks has checked their agencies). */
async function resolveAgencyTokens(loaded: LoadedConfig): Promise<Record<string, string>> {
  const tokens: Record<string, string> = {};
  for (const [agency, secret] of Object.entries(loaded.config.admin?.agencyTokens ?? {}))
    tokens[agency] = await resolveSecret(secret, loaded.file, `/admin/agencyTokens/${agency}`);
  return tokens;
}

/** A gateway's federation, when it has one: partner manifests, consent, and a link per partner. */
interface Federation {
  manifests: PartnerManifestStore;
  consents?: ConsentStore;
  gate?: FederationGate;
  links: PartnerLink[];
  held?: HeldDeliveries;
}

export class GatewayService {
  private readonly subscriptions = new Map<number, Subscription>();
  private federation: Federation | undefined;
  private leases: PartitionLeases | undefined;
  private failures: DeliveryFailures | undefined;
  private unsupported: UnsupportedDeliveries | undefined;
  private admin: HttpListener | undefined;
  private consoleFeed: ConsoleFeed | undefined;
  private ready = false;

  private constructor(
    readonly bus: Bus,
    readonly links: LinkStore,
    readonly identities: IdentityStore,
    /** What the core decided for each routed message, and what went wrong with its deliveries. */
    private readonly ledger: DeliveryLedger,
    private policyEngine: PolicyEngine,
    private readonly loaded: LoadedConfig,
    private readonly log: Logger,
  ) {}

  get adminUrl(): string | undefined {
    return this.admin?.url;
  }

  get policy(): PolicyEngine {
    return this.policyEngine;
  }

  /** Starts a gateway; pass a bus to share one (tests), otherwise it connects as the config says. */
  static async start(loaded: LoadedConfig, log: Logger, bus?: Bus): Promise<GatewayService> {
    const policy = await loadPolicy(loaded);
    checkDeclaredLinks(loaded.config, loaded.file, policy);
    const adminToken =
      loaded.config.admin === undefined
        ? undefined
        : await resolveSecret(loaded.config.admin.token, loaded.file, "/admin/token");
    const agencyTokens = await resolveAgencyTokens(loaded);
    const authorities = await federationAuthorities(loaded);
    const theBus = bus ?? (await connectBus(loaded, log, "fedgate-gateway"));
    await theBus.ensureTopology();
    await limitMessageStores(theBus, loaded.config.gateway);
    const links = new LinkStore(await theBus.keyValue(buckets.links));
    const identities = new IdentityStore(await theBus.keyValue(buckets.identities));
    await Promise.all([links.start(), identities.start()]);
    const ledger = new DeliveryLedger(await theBus.keyValue(buckets.deliveries));
    const service = new GatewayService(theBus, links, identities, ledger, policy, loaded, log);
    await service.createDeclaredLinks();
    const federation = authorities === undefined ? undefined : await service.startFederation(authorities);
    if (adminToken !== undefined && loaded.config.admin !== undefined) {
      const checkAgency = (id: string): boolean => service.policyEngine.agency(id) !== undefined;
      const feed = (service.consoleFeed = await ConsoleFeed.start(theBus, log));
      const bridges = await BridgeStatuses.open(theBus, log);
      const consents = federation?.consents;
      service.admin = await listenAdminApi(
        {
          links,
          joinCodes: await JoinCodeStore.open(theBus, log),
          checkAgency,
          token: adminToken,
          agencyTokens,
          console: (tokens) =>
            consoleRouter({
              tokens,
              links,
              checkAgency,
              feed,
              bridges,
              log,
              ...(consents === undefined ? {} : { consents }),
            }),
          readiness: async () => ({
            nats: await theBus.answers(READY_ROUND_TRIP_MS),
            consumers: service.ready,
          }),
          events: { ledger, links, messages: new MessageMap(await theBus.keyValue(buckets.messages)) },
          ...(federation === undefined ? {} : { partners: federation.manifests }),
          ...(federation?.consents === undefined || loaded.config.federation === undefined
            ? {}
            : {
                consents: {
                  store: federation.consents,
                  partners: loaded.config.federation.partners ?? [],
                  validForDays: loaded.config.federation.consentValidityDays,
                },
              }),
          log,
        },
        loaded.config.admin.host,
        loaded.config.admin.port,
      );
      log.info({ url: service.admin.url }, "admin API listening");
    }
    await service.consume();
    return service;
  }

  /**
   * Re-reads the policy file and checks it as at start (schema, the config's links' agencies) before it
   * applies; on error keeps the old policy and throws.
   */
  async reloadPolicy(): Promise<void> {
    const policy = await loadPolicy(this.loaded);
    checkDeclaredLinks(this.loaded.config, this.loaded.file, policy);
    this.policyEngine = policy;
    this.log.info("policy reloaded");
  }

  private async createDeclaredLinks(): Promise<void> {
    for (const link of this.loaded.config.links) {
      if (this.links.get(link.id) !== undefined) continue;
      try {
        await this.links.create(link);
        this.log.info({ link: link.id }, "created link declared in config");
      } catch (error) {
        // Another replica may have created it a moment ago.
        if (!(
          error instanceof FedgateError &&
          error.code === "FG_LINK_CONFLICT" &&
          this.links.get(link.id) !== undefined
        ))
          throw error;
      }
    }
  }

  /** Partner manifests, consent and the partner links, as federation configures them. */
  private async startFederation(authorities: KeyObject[]): Promise<Federation> {
    const { bus, loaded, log } = this;
    const configured = loaded.config.federation;
    const manifests = new PartnerManifestStore(await bus.keyValue(buckets.partners), { authorities });
    await manifests.start();
    const federation: Federation = { manifests, links: [] };
    this.federation = federation;
    const self = configured?.gateway;
    if (self === undefined || configured?.signingKey === undefined) return federation;
    const pointer = "/federation/signingKey";
    const pem = await resolveSecret(configured.signingKey, loaded.file, pointer);
    let signingKey: KeyObject;
    try {
      signingKey = privateKeyFrom(pem, `${loaded.file}: ${pointer}`);
    } catch (cause) {
      throw new ConfigError(loaded.file, pointer, "is not an Ed25519 private key in PEM", { cause });
    }
    const consents = new ConsentStore(await bus.keyValue(buckets.consents), {
      self,
      signingKey,
      manifestOf: (partner) => manifests.current(partner),
    });
    await consents.start();
    federation.consents = consents;
    federation.gate = new FederationGate(consents, manifests);
    federation.held = await HeldDeliveries.open({ bus, orderWaitMs: configured.orderWaitMs, log });
    const ackWaitMs = loaded.config.gateway.ackWaitMs;
    for (const partner of configured.partners ?? []) {
      federation.links.push(await PartnerLink.start({ bus, self, partner, consents, log, ackWaitMs }));
      log.info({ partner }, "sharing consented conversations with partner gateway");
    }
    return federation;
  }

  private async consume(): Promise<void> {
    const { auditKey } = this.loaded.config.gateway;
    const router = new Router({
      ...(auditKey === undefined
        ? {}
        : {
            auditKey: Buffer.from(
              await resolveSecret(auditKey, this.loaded.file, "/gateway/auditKey"),
              "utf8",
            ),
          }),
      bus: this.bus,
      links: this.links,
      identities: this.identities,
      ledger: this.ledger,
      policy: () => this.policyEngine,
      log: this.log,
      ...(this.federation?.gate === undefined ? {} : { federation: this.federation.gate }),
      ...(this.federation?.held === undefined ? {} : { held: this.federation.held }),
    });
    const gateway = this.loaded.config.gateway;
    const ackWaitMs = gateway.ackWaitMs;
    const policy = { origin: "core", log: this.log, maxAttempts: gateway.maxDeliver };
    const { ttlMs, freshMs } = leaseTimings(ackWaitMs, PULL_WINDOW_MS);
    const leases = new PartitionLeases({
      kv: await this.bus.keyValue(buckets.leases, { ttlMs }),
      replicaId: `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
      partitions: PARTITIONS,
      ttlMs,
      freshMs,
      log: this.log,
      acquire: async (partition) => {
        const subscription = await this.bus.consume(
          {
            stream: "FEDGATE_INBOUND",
            durable: `fedgate-core-p${partition}`,
            filterSubject: subjects.inboundPartition(partition),
            maxAckPending: PARTITION_CONCURRENCY,
            ackWaitMs,
            orderingKey: conversationOf,
            // After a stall the lease may be another replica's: nothing new until it is confirmed.
            mayPull: () => leases.isFresh(partition),
          },
          (message) => router.handle(message),
          policy,
        );
        this.subscriptions.set(partition, subscription);
      },
      release: async (partition) => {
        await this.subscriptions.get(partition)?.stop();
        this.subscriptions.delete(partition);
      },
    });
    this.leases = leases;
    await leases.start();
    this.failures = await DeliveryFailures.start({
      bus: this.bus,
      links: this.links,
      ledger: this.ledger,
      policy: () => this.policyEngine,
      log: this.log,
      ackWaitMs,
      maxAttempts: gateway.maxDeliver,
    });
    this.unsupported = await UnsupportedDeliveries.start({
      bus: this.bus,
      ledger: this.ledger,
      log: this.log,
      ackWaitMs,
      maxAttempts: gateway.maxDeliver,
    });
    this.ready = true;
    this.log.info(
      { partitions: PARTITIONS, held: leases.partitions().length },
      "gateway consuming inbound events",
    );
  }

  async stop(options: { closeBus?: boolean } = {}): Promise<void> {
    this.ready = false;
    // First: a stopping core releases nothing more; what it held waits in the bucket for another replica.
    await this.federation?.held?.stop();
    await this.leases?.stop();
    await this.failures?.stop();
    await this.unsupported?.stop();
    await Promise.all(this.federation?.links.map((link) => link.stop()) ?? []);
    this.federation?.consents?.stop();
    this.federation?.manifests.stop();
    await this.admin?.close();
    await this.consoleFeed?.stop();
    this.links.stop();
    this.identities.stop();
    if (options.closeBus ?? true) await this.bus.close();
  }
}

/**
 * The issuing authorities' keys federation.authorities names, read at start-up: a key that cannot be read is
 * a config error naming its entry. Undefined when the gateway has no partners.
 */
export async function federationAuthorities(loaded: LoadedConfig): Promise<KeyObject[] | undefined> {
  const configured = loaded.config.federation?.authorities;
  if (configured === undefined) return undefined;
  return Promise.all(
    configured.map(async (secret, i) => {
      const pointer = `/federation/authorities/${String(i)}`;
      const pem = await resolveSecret(secret, loaded.file, pointer);
      try {
        return publicKeyFrom(pem, `${loaded.file}: ${pointer}`);
      } catch (cause) {
        throw new ConfigError(loaded.file, pointer, "is not an Ed25519 public key in PEM", { cause });
      }
    }),
  );
}
