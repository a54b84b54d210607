/* Generated from schemas/bridge-deployment.schema.json, schemas/bridge-health.schema.json, schemas/common.schema.json, schemas/config.schema.json, schemas/consent-request.schema.json, schemas/deadletter.schema.json, schemas/decision.schema.json, schemas/delivery.schema.json, schemas/event-status.schema.json, schemas/event.schema.json, schemas/federation.schema.json, schemas/join-code-request.schema.json, schemas/link-state-request.schema.json, schemas/link.schema.json, schemas/partner-manifest.schema.json, schemas/policy.schema.json by `npm run generate`. Do not edit: change the schema instead. */

export type Key = string;
/**
 * This interface was referenced by `BridgeDeployment`'s JSON-Schema
 * via the `definition` "SecretKey".
 */

export type SecretKey = string;

/**
 * What a network's bridge needs from its deployment beyond its config section (bridges/<network>/deployment.json). The Helm chart derives the bridge's Service, probes, mounted Secret and env vars from it; `npm run generate` writes them into charts/fedgate/bridges.yaml and the chart's values schema.
 */

export interface BridgeDeployment {
  $schema?: string;
  /**
   * The network's name for people, e.g. Matrix.
   */
  label: string;
  /**
   * The bridge serves HTTP to other pods on config.bridges.<network>.listen (its config schema gives the default port). The chart gives it a ClusterIP Service on that port, makes it listen on 0.0.0.0, sets its publicUrl to the Service, and adds that URL to every other bridge's attachments.hosts.
   */
  http?: {
    /**
     * The container port's name (a Kubernetes IANA_SVC_NAME).
     */
    portName: string;
    /**
     * What the Service's URL is for, in words (the chart's comments and notes say it).
     */
    purpose: string;
  };
  /**
   * A file the bridge reads, from an existing Secret the chart mounts read-only in the bridge's pod only. The config key naming the file is pointed at it unless the config sets it.
   */
  secretFile?: {
    /**
     * The key under the chart's bridges.<network> that names the Secret: {name, key}.
     */
    values: string;
    /**
     * What the Secret holds, in words, e.g. "the Application Service registration the homeserver was given".
     */
    holds: string;
    /**
     * The key of config.bridges.<network> naming the file.
     */
    configKey: string;
    /**
     * The file's key in the Secret, unless the values name another.
     */
    defaultKey: string;
    /**
     * Where the file is mounted: a folder of its own (not under the config's /etc/fedgate) and the file name.
     */
    mountPath: string;
  };
  /**
   * Secrets the bridge reads from env vars set from an existing Secret, in the bridge's container only. Each config key is set to {env: VAR} unless the config sets it.
   */
  secretEnv?: {
    /**
     * The key under the chart's bridges.<network> that names the Secret: {name, <each var's secretKey>}.
     */
    values: string;
    /**
     * What the Secret holds, in words, e.g. "the service account's passwords".
     */
    holds: string;
    /**
     * @minItems 1
     * @maxItems 8
     */
    vars: [SecretEnvVar, ...SecretEnvVar[]];
  };
  /**
   * Files the bridge keeps across restarts (e.g. its devices' keys), encrypted with a key from a Secret. When config.bridges.<network>.<section>.enabled is true, the chart mounts the key read-only from an existing Secret and keeps the files on a PersistentVolumeClaim (one it creates, or an existing one), and points <section>.storeKeyFile and <section>.storeFile at them unless the config sets them.
   */
  store?: {
    /**
     * The key under the chart's bridges.<network> for the store: {keySecret: {name, key}, persistence}.
     */
    values: string;
    /**
     * The key of config.bridges.<network> whose enabled switches the store on and which holds storeFile and storeKeyFile.
     */
    section: string;
    /**
     * What the store keeps, in words, e.g. "the keys and sessions of the bridge's devices".
     */
    holds: string;
    /**
     * The store key's key in the Secret, unless the values name another.
     */
    defaultKey: string;
    /**
     * Where the store key is mounted: a folder of its own and the file name.
     */
    keyMountPath: string;
    /**
     * Where the claim is mounted, writable.
     */
    dataMountPath: string;
    /**
     * The store file's name in dataMountPath.
     */
    fileName: string;
  };
}
/**
 * This interface was referenced by `BridgeDeployment`'s JSON-Schema
 * via the `definition` "SecretEnvVar".
 */

export interface SecretEnvVar {
  /**
   * The key of config.bridges.<network> that is a Secret reference.
   */
  configKey: string;
  /**
   * The env var the container gets.
   */
  env: string;
  /**
   * The values key (under `values`) naming its key in the Secret.
   */
  secretKey: string;
  /**
   * Its key in the Secret, unless the values name another.
   */
  defaultKey: string;
  /**
   * Whether the bridge cannot start without it. One that is not may be switched off by an empty key in the values.
   */
  required: boolean;
  /**
   * What it is, in words, for the values schema.
   */
  description: string;
}

export interface BridgeHealth {
  specVersion: "1";
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  network: string;
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  instance: string;
  /**
   * The connection is open, as the bridge's own connection events say.
   */
  connected: boolean;
  /**
   * The last round trip to the server was answered in time (or none failed since the connection came up).
   */
  answering: boolean;
  /**
   * Round trips not answered in time on an open connection since the bridge started.
   */
  stalls: number;
  /**
   * Times the connection came back since the bridge started.
   */
  reconnects: number;
  /**
   * When the bridge started watching its connection.
   */
  startedAt: string;
  /**
   * When the last round trip was answered.
   */
  lastAnsweredAt?: string;
  /**
   * How long the last answered round trip took.
   */
  roundTripMs?: number;
  updatedAt: string;
}

export type Token = string;
/**
 * Identifier of an agency as declared in the policy.
 *
 * This interface was referenced by `Common`'s JSON-Schema
 * via the `definition` "AgencyId".
 */

export type AgencyId = string;
/**
 * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
 *
 * This interface was referenced by `Common`'s JSON-Schema
 * via the `definition` "MarkingId".
 */

export type MarkingId = string;
/**
 * Gateway-wide unique event identifier (a UUID is fine).
 *
 * This interface was referenced by `Common`'s JSON-Schema
 * via the `definition` "EventId".
 */

export type EventId = string;

/**
 * Definitions shared by the event, link, policy and config schemas.
 */

export interface Common {
  [k: string]: unknown;
}
/**
 * One conversation on one network instance, owned by one agency.
 *
 * This interface was referenced by `Common`'s JSON-Schema
 * via the `definition` "Endpoint".
 */

export interface Endpoint {
  /**
   * Protocol family: xmpp, matrix, stashcat, or another adapter's name.
   */
  network: string;
  /**
   * Which deployment of that network, e.g. "bpol" or "tchap".
   */
  instance: string;
  /**
   * The conversation's native identifier (a MUC JID, a Matrix room id, a Stashcat channel id). For kind "direct": the participant on this network, "|", then the peer as network/instance/userId ("%" and "|" in user ids percent-encoded).
   */
  conversation: string;
  agency: AgencyId;
  /**
   * A group conversation, or a direct chat between two people.
   */
  kind?: "room" | "direct";
}

export type Secret =
  | {
      env: string;
    }
  | {
      file: string;
    }
  | {
      value: string;
    };
/**
 * A secret, given by reference so that config files can be shared: {env: NAME} or {file: path}. A literal {value: ...} is accepted for local use.
 */

export type Secret1 =
  | {
      env: string;
    }
  | {
      file: string;
    }
  | {
      value: string;
    };

export type GatewayConfig = {
  [k: string]: unknown;
} & {
  /**
   * Path of the policy YAML file, relative to this config file.
   */
  policyFile?: string;
  policy?: Policy;
  /**
   * Reload the policy when policyFile changes (its folder is watched, so a Kubernetes ConfigMap update counts), as on SIGHUP: the new policy is checked first, and a broken one is logged and refused while the old one stays in force.
   */
  watchPolicyFile: boolean;
  auditKey?: Secret2;
  /**
   * How long an inbound event (in the core) or a delivery (in a bridge) may go without a sign of progress before JetStream hands it out again: a core replica or bridge that dies is replaced after about this long. Work in progress shows progress on its own.
   */
  ackWaitMs: number;
  /**
   * Window in which JetStream drops a re-published event with the same id.
   */
  duplicateWindowMs: number;
  /**
   * Attempts for an event that keeps failing with a transient error before it is dead-lettered.
   */
  maxDeliver: number;
  /**
   * How long a message's ids (fedgate_messages) and routing decision (fedgate_deliveries) are kept after they were written, in days (fractions allowed). An edit, reply, reaction or deletion of an older message is no longer tied to it: see the README's message horizon. The gateway sets it on both buckets; bridges open them without changing it.
   */
  messageHorizonDays: number;
  /**
   * The most bytes each of fedgate_messages and fedgate_deliveries holds, so that the NATS server's memory stays bounded (it keeps an index entry per key). When one is full its oldest entries go first, as if past the horizon.
   */
  messageStoreMaxBytes: number;
};
/**
 * A secret, given by reference so that config files can be shared: {env: NAME} or {file: path}. A literal {value: ...} is accepted for local use.
 */

export type Secret2 =
  | {
      env: string;
    }
  | {
      file: string;
    }
  | {
      value: string;
    };
/**
 * A secret, given by reference so that config files can be shared: {env: NAME} or {file: path}. A literal {value: ...} is accepted for local use.
 */

export type Secret3 =
  | {
      env: string;
    }
  | {
      file: string;
    }
  | {
      value: string;
    };
/**
 * A secret, given by reference so that config files can be shared: {env: NAME} or {file: path}. A literal {value: ...} is accepted for local use.
 */

export type Secret4 =
  | {
      env: string;
    }
  | {
      file: string;
    }
  | {
      value: string;
    };

/**
 * The configuration file of every fedgate process (the gateway and each bridge).
 */

export interface Config {
  nats: NatsConfig;
  gateway: GatewayConfig;
  federation?: FederationConfig;
  admin?: AdminConfig;
  telemetry: TelemetryConfig;
  log: {
    level: "trace" | "debug" | "info" | "warn" | "error" | "fatal";
  };
  /**
   * Links declared in the file; created at start-up when missing. Links made through the admin API live only in the store.
   */
  links: Link[];
  /**
   * Per-bridge settings, read by `fedgate bridge <name>`.
   */
  bridges: {
    [k: string]: unknown;
  };
}

export interface NatsConfig {
  /**
   * NATS server URL(s), comma-separated. The NATS_URL environment variable overrides it.
   */
  url: string;
  user?: string;
  password?: Secret;
  token?: Secret;
  /**
   * A NATS .creds file (user JWT and nkey seed, as nsc writes it), relative to this config file. One way to log in: credsFile, nkeySeed, token or user and password.
   */
  credsFile?: string;
  nkeySeed?: Secret1;
  tls?: NatsTls;
  /**
   * JetStream replicas for the streams and KV buckets fedgate creates (3 on a clustered NATS).
   */
  replicas: number;
  streams: StreamLimits;
}
/**
 * TLS to NATS. Files are PEM, relative to this config file. A tls:// URL or a server that requires TLS uses it; without caFile the system's CAs verify the server.
 */

export interface NatsTls {
  /**
   * The CA (or CAs) that issued the NATS servers' certificates.
   */
  caFile?: string;
  /**
   * A client certificate, for a server that verifies clients (tls.verify); with keyFile.
   */
  certFile?: string;
  /**
   * The client certificate's private key.
   */
  keyFile?: string;
}
/**
 * What each stream fedgate creates keeps, set by every fedgate process at start: an existing stream's limits are updated. Inbound, outbound and audit refuse new messages when full (publishers retry, nothing is dropped unseen); dead letters drop the oldest.
 */

export interface StreamLimits {
  /**
   * FEDGATE_INBOUND: normalised events from the bridges, until the core has routed them.
   */
  inbound: {
    /**
     * Most bytes kept.
     */
    maxBytes: number;
    /**
     * Most messages kept.
     */
    maxMsgs: number;
    /**
     * Oldest message kept, in days; 0: no age limit.
     */
    maxAgeDays: number;
  };
  /**
   * FEDGATE_OUTBOUND: deliveries to the bridges, until they have delivered them.
   */
  outbound: {
    /**
     * Most bytes kept.
     */
    maxBytes: number;
    /**
     * Most messages kept.
     */
    maxMsgs: number;
    /**
     * Oldest message kept, in days; 0: no age limit.
     */
    maxAgeDays: number;
  };
  /**
   * FEDGATE_AUDIT: the audit trail, evidence: keep it as long as your retention rules say, and export it before it ages out.
   */
  audit: {
    /**
     * Most bytes kept.
     */
    maxBytes: number;
    /**
     * Most messages kept.
     */
    maxMsgs: number;
    /**
     * Oldest message kept, in days; 0: no age limit.
     */
    maxAgeDays: number;
  };
  /**
   * FEDGATE_DEADLETTER: refused events, for diagnosis.
   */
  deadLetter: {
    /**
     * Most bytes kept.
     */
    maxBytes: number;
    /**
     * Most messages kept.
     */
    maxMsgs: number;
    /**
     * Oldest message kept, in days; 0: no age limit.
     */
    maxAgeDays: number;
  };
}
/**
 * Who may talk to whom, up to which marking, with which attachments. Anything not allowed here is denied.
 */

export interface Policy {
  /**
   * @minItems 1
   */
  agencies: [Agency, ...Agency[]];
  /**
   * The markings fedgate may carry at all. Only markings at the lowest classified level (restricted) can be declared: nothing above it is ever bridged.
   */
  markings?: Marking[];
  /**
   * Pairs of markings declared equivalent by an agreement. Symmetric, not transitive: nothing is equivalent unless listed.
   */
  equivalences?: [string, string, ...string[]][];
  /**
   * The highest marking each network instance is approved to carry. An instance not listed carries unmarked content only.
   */
  accreditations?: Accreditation[];
  routes: Route[];
}

export interface Agency {
  /**
   * Identifier of an agency as declared in the policy.
   */
  id: string;
  /**
   * ISO 3166-1 alpha-2, or EU for an EU body.
   */
  country: string;
  name: string;
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  network: string;
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  instance: string;
}

export interface Marking {
  /**
   * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
   */
  id: string;
  country: string;
  /**
   * How the marking is written, e.g. "VS-NUR FÜR DEN DIENSTGEBRAUCH".
   */
  label: string;
  level: "restricted";
  /**
   * A classification level, or a protection marking (like Diffusion Restreinte) that is not a classification.
   */
  kind?: "classification" | "protection";
  /**
   * A release caveat: content so marked reaches agencies of the marking's country only ("NUR FÜR DEUTSCHE", "Spécial France"). Checked before equivalences: no equivalence, ceiling or accreditation takes it across a border.
   */
  nationalOnly?: boolean;
  /**
   * A release caveat: content so marked reaches agencies of the marking's country and of these countries only. Checked before equivalences.
   *
   * @maxItems 64
   */
  releasableTo?: string[];
}

export interface Accreditation {
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  network: string;
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  instance: string;
  /**
   * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
   */
  marking: string;
}

export interface Route {
  /**
   * Identifier of an agency as declared in the policy.
   */
  from: string;
  /**
   * Identifier of an agency as declared in the policy.
   */
  to: string;
  bidirectional?: boolean;
  /**
   * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
   */
  ceiling?: string;
  textOnly?: boolean;
  attachments?: AttachmentRule;
}

export interface AttachmentRule {
  /**
   * Allowed media types; "image/*" allows a whole top-level type.
   */
  mediaTypes: string[];
  maxBytes: number;
}
/**
 * Partner gateways: the issuing authorities whose signed manifests this gateway accepts (PUT /v1/partners/{id}/manifest).
 */

export interface FederationConfig {
  /**
   * Each trusted authority's Ed25519 public key, PEM (fedgate federation key generate writes one).
   *
   * @minItems 1
   * @maxItems 16
   */
  authorities: [Secret, ...Secret[]];
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  gateway?: string;
  signingKey?: Secret3;
  /**
   * The partner gateways this gateway shares conversations with, by id: each needs a manifest (PUT /v1/partners/{id}/manifest) and, per conversation, both gateways' consent.
   *
   * @maxItems 64
   *
   * Items: A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  partners?: string[];
  /**
   * How long this gateway holds what its own networks wrote in a conversation a partner orders (a link's orderedBy) for the hub to return it in its order. Past it, the event goes to this gateway's other networks unordered, logged and counted: a hub away never stops a conversation on this side.
   */
  orderWaitMs: number;
  leafnode?: LeafnodeConfig;
  /**
   * How long this gateway's approval of a shared conversation holds when the admin names no time.
   */
  consentValidityDays: number;
}
/**
 * How this gateway's nats-server joins its partners' (fedgate federation server-config writes the server's accounts and leafnodes from it): where partners connect, which ones this side dials, and TLS. Every partner named here must be in partners.
 */

export interface LeafnodeConfig {
  /**
   * host:port where partners that connect to this gateway arrive, e.g. 0.0.0.0:7422.
   */
  listen?: string;
  /**
   * Partners that connect here, each with the credentials its leafnode gives.
   */
  accept?: {
    [k: string]: LeafnodeCredentials;
  };
  /**
   * Partners this gateway connects to, at the URL of their leafnode listener.
   */
  connect?: {
    [k: string]: LeafnodeRemote;
  };
  /**
   * PEM files of this gateway's leafnode certificate, its key, and the CA partners' certificates chain to. Without it the leafnode is plain TCP, for tests on one host only.
   */
  tls?: {
    certFile: string;
    keyFile: string;
    caFile: string;
  };
}
/**
 * What a partner's leafnode logs in with.
 *
 * This interface was referenced by `Config`'s JSON-Schema
 * via the `definition` "LeafnodeCredentials".
 */

export interface LeafnodeCredentials {
  user: string;
  password: Secret;
}
/**
 * A partner's leafnode listener this gateway connects to, and what it logs in with there.
 *
 * This interface was referenced by `Config`'s JSON-Schema
 * via the `definition` "LeafnodeRemote".
 */

export interface LeafnodeRemote {
  url: string;
  user: string;
  password: Secret;
}

export interface AdminConfig {
  host: string;
  port: number;
  token: Secret4;
  /**
   * Bearer tokens of agencies' admins, by agency id (as declared in the policy): each sees and changes only the links its agency has an endpoint in, through /v1 and the console.
   */
  agencyTokens: {
    [k: string]: Secret;
  };
}

export interface TelemetryConfig {
  /**
   * The name the routing core reports its traces and metrics under.
   */
  serviceName: string;
  /**
   * OTLP/HTTP endpoint for traces and metrics; OTEL_EXPORTER_OTLP_ENDPOINT works too. None: telemetry stays in-process.
   */
  otlpEndpoint?: string;
}
/**
 * Joins two or more conversations on different networks into one bridged conversation.
 */

export interface Link {
  id: string;
  description?: string;
  /**
   * @minItems 2
   * @maxItems 16
   */
  endpoints: [Endpoint, Endpoint, ...Endpoint[]];
  /**
   * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
   */
  marking?: string;
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  orderedBy?: string;
  /**
   * paused: the core delivers none of the link's events (each is denied as link-paused, and its sender told) until an admin makes it active again. Absent means active.
   */
  state?: "active" | "paused";
  createdAt?: string;
}
/**
 * One conversation on one network instance, owned by one agency.
 */

export interface StatusListen {
  host: string;
  /**
   * 0: any free port (the log says which).
   */
  port: number;
}
/**
 * How a bridge checks that its server still answers, beyond the connection being open: an application-level round trip (XMPP ping, the Matrix appservice ping, Stashcat's push heartbeat) every intervalMs. One not answered within timeoutMs counts as a stall: /readyz fails, the bridge reconnects and catches up on what it missed.
 *
 * This interface was referenced by `Config`'s JSON-Schema
 * via the `definition` "ConnectionCheck".
 */

export interface ConnectionCheck {
  intervalMs: number;
  timeoutMs: number;
}

export interface ConsentRequest {
  /**
   * Who approved it, as the partner's audit will show it (a name or role, never a secret).
   */
  approvedBy?: string;
  /**
   * How long the approval holds before it must be renewed; without it, federation.consentValidityDays.
   */
  validForDays?: number;
}

export interface DeadLetter {
  specVersion: "1";
  /**
   * Which process gave up: core, or a bridge's name.
   */
  origin: string;
  /**
   * Where the message was read from.
   */
  subject: string;
  reason: {
    /**
     * The error code (FG_...).
     */
    code: string;
    message: string;
  };
  deliveryCount?: number;
  /**
   * The message as received.
   */
  payload: string;
  payloadEncoding: "utf8" | "base64";
  failedAt: string;
}

export type DecisionReason =
  | "allowed"
  | "no-link"
  | "link-paused"
  | "no-route"
  | "agency-unknown"
  | "agency-not-on-network"
  | "marking-unknown"
  | "marking-conflict"
  | "marking-above-route"
  | "marking-not-accredited"
  | "marking-not-releasable"
  | "attachments-not-allowed"
  | "attachment-type-not-allowed"
  | "attachment-too-large"
  | "relation-not-delivered"
  | "relation-withheld"
  | "relation-forgotten"
  | "not-author"
  | "not-consented"
  | "agency-not-in-manifest"
  | "echo"
  | "unsupported-by-network";

/**
 * The policy engine's verdict for one event and one target. Also the body of every audit record.
 */

export interface Decision {
  [k: string]: unknown;
}
/**
 * One message on fedgate.v1.audit.<decision>: the records of decisions made together. After a crash a record may be stored twice; eventId with target identifies it.
 *
 * This interface was referenced by `Decision`'s JSON-Schema
 * via the `definition` "AuditBatch".
 */

export interface AuditBatch {
  specVersion: "1";
  /**
   * @minItems 1
   */
  records: [AuditRecord, ...AuditRecord[]];
  chain?: AuditChainLink;
}
/**
 * One decision, in an AuditBatch on fedgate.v1.audit.<decision>. Metadata only: never the message text.
 *
 * This interface was referenced by `Decision`'s JSON-Schema
 * via the `definition` "AuditRecord".
 */

export interface AuditRecord {
  specVersion: "1";
  /**
   * Gateway-wide unique event identifier (a UUID is fine).
   */
  eventId: string;
  eventType: string;
  /**
   * deliver and deny are the core's policy decisions; unsupported is the target adapter's outcome for a delivery its network cannot show (reason unsupported-by-network).
   */
  decision: "deliver" | "deny" | "unsupported";
  reason: DecisionReason;
  /**
   * Human-readable explanation, free of message content.
   */
  detail?: string;
  source: {
    network: string;
    instance: string;
    conversation: string;
    agency?: string;
  };
  target?: Endpoint;
  linkId?: string;
  /**
   * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
   */
  marking?: string;
  /**
   * SHA-256 of the event content as published, so a record can be matched to a message without holding its text.
   */
  contentSha256?: string;
  decidedAt: string;
  /**
   * Which gateway replica decided (<host>/<pid>), or, for unsupported, which adapter (<network>-<instance>).
   */
  decidedBy?: string;
}
/**
 * One conversation on one network instance, owned by one agency.
 */

export interface AuditChainLink {
  /**
   * One core process from its start to its end: its replica id and a random part, so a restart begins a new chain.
   */
  writer: string;
  /**
   * 1 for the writer's first batch, then one more each.
   */
  seq: number;
  /**
   * SHA-256 (hex) of the writer's previous batch as stored; absent on its first.
   */
  previous?: string;
  /**
   * HMAC-SHA256 (hex), under the core's gateway.auditKey, of the writer, seq, previous and the records as stored; absent when the core has no key.
   */
  mac?: string;
}

export type NormalisedEvent = {
  specVersion: "1";
  /**
   * Gateway-wide unique event identifier (a UUID is fine).
   */
  id: string;
  type:
    | "message.created"
    | "message.edited"
    | "message.deleted"
    | "reaction.added"
    | "reaction.removed"
    | "member.joined"
    | "member.left"
    | "notice";
  source: EventSource;
  sender: EventSender;
  content?: EventContent;
  relations?: EventRelations;
  /**
   * The classification or protection marking the sender put on this event, if any.
   */
  marking?: string;
  timestamp: string;
  trace?: TraceContext;
};

/**
 * What the core publishes to fedgate.v1.outbound.<network>.<instance>: one event, cleared by policy, for one target conversation.
 */

export interface Delivery {
  specVersion: "1";
  /**
   * Unique per event and target; also the JetStream message id, so a delivery is stored once.
   */
  id: string;
  event: NormalisedEvent;
  target: Endpoint;
  /**
   * On a delivery to the partner gateway that orders the conversation: this gateway holds the event's deliveries to its other networks until the hub returns the event in its order.
   */
  returnOrdered?: true;
  senderAgency?: AgencyRef;
  marking?: DeliveredMarking;
}

export interface EventSource {
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  network: string;
  /**
   * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
   */
  instance: string;
  conversation: string;
  /**
   * The native id of the message this event created or acted through, when the network has one.
   */
  messageId?: string;
}

export interface EventSender {
  /**
   * Native user id on the source network.
   */
  userId: string;
  displayName?: string;
  /**
   * Where the sender's picture can be fetched (http or https), when their network has one: a link the source adapter serves or a URL on the source server, like an attachment's.
   */
  avatarUrl?: string;
  /**
   * The sender's agency when the adapter knows it; otherwise the source endpoint's owner is assumed.
   */
  agency?: string;
}

export interface EventContent {
  /**
   * Plain-text body.
   */
  body?: string;
  /**
   * Optional formatted body in the sanitised HTML subset (b, strong, i, em, u, s, del, code, pre, blockquote, p, br, ul, ol, li, a href).
   */
  html?: string;
  /**
   * @maxItems 16
   */
  attachments?: Attachment[];
  /**
   * The reaction key, usually one emoji.
   */
  reaction?: string;
}
/**
 * This interface was referenced by `undefined`'s JSON-Schema
 * via the `definition` "Attachment".
 */

export interface Attachment {
  name: string;
  mediaType: string;
  /**
   * Size in bytes.
   */
  size: number;
  sha256: string;
  /**
   * Where the receiving adapter fetches the bytes (an http(s) URL the source adapter serves or a URL on the source server).
   */
  url: string;
}
/**
 * Links to earlier events, always as gateway event ids; adapters translate them to native ids per endpoint through the message map.
 */

export interface EventRelations {
  /**
   * Gateway-wide unique event identifier (a UUID is fine).
   */
  replyTo?: string;
  /**
   * Gateway-wide unique event identifier (a UUID is fine).
   */
  replaces?: string;
  /**
   * Gateway-wide unique event identifier (a UUID is fine).
   */
  redacts?: string;
  /**
   * Gateway-wide unique event identifier (a UUID is fine).
   */
  reactsTo?: string;
}
/**
 * W3C trace context, so one message can be followed across adapters and the core.
 */

export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}
/**
 * One conversation on one network instance, owned by one agency.
 */

export interface AgencyRef {
  /**
   * Identifier of an agency as declared in the policy.
   */
  id: string;
  name: string;
  country: string;
}
/**
 * The effective marking, expressed as the target agency's country marks it where the policy declares an equivalence. Adapters must show it.
 */

export interface DeliveredMarking {
  /**
   * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
   */
  id: string;
  label: string;
  /**
   * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
   */
  original?: string;
}

export interface EventStatus {
  /**
   * Gateway-wide unique event identifier (a UUID is fine).
   */
  eventId: string;
  /**
   * Absent, as decidedAt and targets, for a message routed before the gateway kept its decisions.
   */
  eventType?: string;
  source: ConversationAddress;
  /**
   * The event's effective marking, as the core determined it: what every decision was made on.
   */
  marking?: string;
  /**
   * When the core decided.
   */
  decidedAt?: string;
  /**
   * One entry per other conversation of the link as it was then: those delivered to, then those denied.
   */
  targets: TargetStatus[];
}
/**
 * A conversation as network, instance and the network's own id of it.
 *
 * This interface was referenced by `EventStatus`'s JSON-Schema
 * via the `definition` "Conversation".
 */

export interface ConversationAddress {
  network: string;
  instance: string;
  conversation: string;
}
/**
 * This interface was referenced by `EventStatus`'s JSON-Schema
 * via the `definition` "TargetStatus".
 */

export interface TargetStatus {
  target: ConversationAddress;
  /**
   * The agency that owns the target conversation, as the links say now; absent when it is linked no more.
   */
  agency?: string;
  /**
   * The core's policy decision for this target. deliver is always for the reason allowed.
   */
  decision: "deliver" | "deny";
  /**
   * Machine-readable reason. allowed is the only reason for deliver. relation-not-delivered: an edit, reaction or deletion of a message the target never received; relation-withheld: a reply to a message withheld from the target by its marking; relation-forgotten: a reaction to or deletion of a message fedgate no longer knows (past the message horizon, or never routed), which has nothing to act on, so it is not delivered and its sender is not told; marking-not-releasable: a release caveat of a marking in play (nationalOnly, releasableTo) keeps it from the target's country; not-author: an edit by someone other than the original's author, or a deletion by someone else from outside the conversation the original was written in. not-consented: a conversation shared with a partner gateway that either gateway has not approved, has revoked, or whose approval expired; agency-not-in-manifest: a partner gateway's event names an agency its signed manifest does not give it (or no valid manifest of it is held). link-paused: the link is paused by an admin (link state paused), so nothing crosses it. unsupported-by-network: recorded by the target's adapter, not the policy: the delivery was allowed, but the target network cannot show this kind of event (membership on Stashcat, for one), so nothing was posted there.
   */
  reason:
    | "allowed"
    | "no-link"
    | "link-paused"
    | "no-route"
    | "agency-unknown"
    | "agency-not-on-network"
    | "marking-unknown"
    | "marking-conflict"
    | "marking-above-route"
    | "marking-not-accredited"
    | "marking-not-releasable"
    | "attachments-not-allowed"
    | "attachment-type-not-allowed"
    | "attachment-too-large"
    | "relation-not-delivered"
    | "relation-withheld"
    | "relation-forgotten"
    | "not-author"
    | "not-consented"
    | "agency-not-in-manifest"
    | "echo"
    | "unsupported-by-network";
  decidedAt: string;
  delivery?: DeliveryOutcome;
}
/**
 * What became of a delivery (present where the decision was deliver). delivered: the target's bridge recorded the message it created there; unsupported: the target network cannot show this kind of event, so its bridge posted nothing (audited as unsupported-by-network); failed: the delivery was dead-lettered, with the error code and when; pending: none of these yet (still queued or retrying, or delivered where the network gave the message no id).
 *
 * This interface was referenced by `EventStatus`'s JSON-Schema
 * via the `definition` "DeliveryOutcome".
 */

export interface DeliveryOutcome {
  state: "delivered" | "unsupported" | "failed" | "pending";
  /**
   * For unsupported: what the target network cannot show, as its bridge said; never message content.
   */
  detail?: string;
  /**
   * For failed: the error code (FG_...).
   */
  code?: string;
  /**
   * For failed: when it was dead-lettered.
   */
  failedAt?: string;
}

export type SharedConversation = string;
/**
 * What an adapter publishes to fedgate.v1.inbound.*: one thing that happened in one conversation, in no protocol's terms.
 */

export interface Federation {
  [k: string]: unknown;
}
/**
 * One gateway's consent to share one conversation with one partner gateway, or its revocation. A conversation flows only while both gateways' newest grants say granted and neither has expired.
 *
 * This interface was referenced by `Federation`'s JSON-Schema
 * via the `definition` "ConsentGrant".
 */

export interface ConsentGrant {
  /**
   * The gateway that consents.
   */
  gateway: string;
  /**
   * The gateway it consents to.
   */
  partner: string;
  conversation: SharedConversation;
  state: "granted" | "revoked";
  /**
   * Raised with every grant or revocation of the conversation (milliseconds since 1970 will do): a partner keeps the highest, so a replayed grant never undoes a revocation.
   */
  serial: number;
  issuedAt: string;
  expiresAt: string;
  /**
   * Who approved it, for the partner's audit (an admin's name or role, never a secret).
   */
  approvedBy?: string;
}
/**
 * A consent grant and its gateway's Ed25519 signature over it, by a key the gateway's manifest lists in grantKeys.
 *
 * This interface was referenced by `Federation`'s JSON-Schema
 * via the `definition` "SignedConsentGrant".
 */

export interface SignedConsentGrant {
  grant: ConsentGrant;
  signature: ManifestSignature;
}
/**
 * Ed25519 over the manifest's canonical JSON (RFC 8785: keys sorted, no spaces).
 */

export interface ManifestSignature {
  algorithm: "Ed25519";
  /**
   * The first 16 bytes of the SHA-256 of the signing key's SubjectPublicKeyInfo, base64url: which configured authority key verifies it.
   */
  keyId: string;
  /**
   * The signature, base64 (64 bytes).
   */
  value: string;
}
/**
 * An event one gateway releases to another, on fedgate.v1.federation.<from>.<to>.event. The sending gateway has decided it under its own policy; the receiver decides it again under its own. The sender's agency is asserted by the sending gateway, and the receiver accepts only an agency the sender's manifest gives it.
 *
 * This interface was referenced by `Federation`'s JSON-Schema
 * via the `definition` "FederatedEvent".
 */

export interface FederatedEvent {
  specVersion: "1";
  /**
   * The sender's delivery id: the receipt names it, and the receiver stores an id once.
   */
  id: string;
  conversation: SharedConversation;
  event: NormalisedEvent;
  /**
   * The sender follows the receiver's order for this conversation: the receiver, its hub, sends the event back once it has ordered it, among the conversation's other events, so that the sender can deliver it to its other networks in that order.
   */
  returnOrdered?: true;
}

export interface FederationReceipt {
  id: string;
  outcome: "stored" | "refused";
  code?: string;
  detail?: string;
}

export interface JoinCodeRequest {
  /**
   * The network of the conversation that may join, e.g. matrix.
   */
  network: string;
  /**
   * Its network instance, e.g. tchap.
   */
  instance: string;
  /**
   * The agency that owns the joining conversation; it must be declared in the policy.
   */
  agency: string;
  /**
   * The only conversation (a Matrix room id) that may redeem the code; without it, any conversation of the network instance may.
   */
  conversation?: string;
  /**
   * How long the code is valid, in seconds: at least a minute, at most a day.
   */
  ttlSeconds?: number;
}

export interface LinkStateRequest {
  /**
   * paused: the core delivers none of the link's events (each is denied as link-paused, and its sender told) until an admin makes it active again. Absent means active.
   */
  state: "active" | "paused";
}

export type DisplayName = string;

/**
 * A partner gateway's manifest and the issuing authority's Ed25519 signature over it. A gateway trusts a partner only as far as a manifest it can verify with an authority key it was configured with says.
 */

export interface SignedPartnerManifest {
  manifest: PartnerManifest;
  signature: ManifestSignature;
}
/**
 * What a partner gateway is and may do: the agencies it speaks for, where it is reached, the keys its certificates carry, the markings each agency may receive and the equivalences it declares. Versioned: a newer version replaces an older one, never the reverse.
 *
 * This interface was referenced by `SignedPartnerManifest`'s JSON-Schema
 * via the `definition` "PartnerManifest".
 */

export interface PartnerManifest {
  /**
   * Raised with every change; a gateway refuses a manifest older than the one it holds.
   */
  version: number;
  gateway: {
    /**
     * A lower-case name that is safe as a NATS subject token and a KV key part: a network ("xmpp"), an instance ("bpol").
     */
    id: string;
    /**
     * ISO 3166-1 alpha-2 of the country that runs the gateway.
     */
    country: string;
    name: DisplayName;
  };
  issuedAt: string;
  /**
   * After this, the manifest is refused: the partner's authority must issue a new one.
   */
  expiresAt: string;
  /**
   * The agencies this gateway speaks for: no event it sends may name another.
   *
   * @minItems 1
   * @maxItems 256
   */
  agencies: [
    {
      /**
       * Identifier of an agency as declared in the policy.
       */
      id: string;
      name: DisplayName;
      country: string;
      /**
       * The markings the agency may receive; none: only unmarked messages.
       *
       * @maxItems 64
       *
       * Items: Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
       */
      accreditation?: string[];
    },
    ...{
      /**
       * Identifier of an agency as declared in the policy.
       */
      id: string;
      name: DisplayName;
      country: string;
      /**
       * The markings the agency may receive; none: only unmarked messages.
       *
       * @maxItems 64
       *
       * Items: Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
       */
      accreditation?: string[];
    }[],
  ];
  endpoints: {
    /**
     * Where the partner's NATS leafnode connection comes from or goes to, e.g. tls://gw.example.fr:7422.
     */
    leafnode: string;
  };
  pins: {
    /**
     * SHA-256 (lower-case hex) of the DER SubjectPublicKeyInfo of each key the partner's leafnode certificate may carry, as nats-server's pinned_certs takes them: a certificate renewed on the same key still matches; more than one while the key is changed.
     *
     * @minItems 1
     * @maxItems 8
     */
    tlsPublicKeySha256: [string, ...string[]];
  };
  /**
   * The Ed25519 keys (SubjectPublicKeyInfo, DER, base64) the gateway signs its consent grants with; a grant signed by another key is refused. More than one while a key is changed.
   *
   * @minItems 1
   * @maxItems 4
   */
  grantKeys?: [string, ...string[]];
  /**
   * Pairs of markings the partner declares equivalent, its own first.
   *
   * @maxItems 256
   */
  equivalences?: [unknown, unknown, ...unknown[]][];
}
/**
 * Ed25519 over the manifest's canonical JSON (RFC 8785: keys sorted, no spaces).
 *
 * This interface was referenced by `SignedPartnerManifest`'s JSON-Schema
 * via the `definition` "ManifestSignature".
 */
