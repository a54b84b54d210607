/**
 * Derives charts/fedgate/values.schema.json from the config, policy, link and common schemas, so that the chart
 * checks `config` and `policy` exactly as fedgate will. Helm's validator does not follow relative file refs,
 * so every referenced definition is inlined into one self-contained document.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { format } from "prettier";
import { stringify } from "yaml";
import { bridgeNetworks, type BridgeNetwork } from "../bridges/index.js";
import { validatorFor } from "../schemas/contract/schemas.js";
import type { BridgeDeployment } from "../schemas/types.js";

type Json = null | boolean | number | string | Json[] | JsonObject;
interface JsonObject {
  [key: string]: Json;
}

const root = fileURLToPath(new URL("../", import.meta.url));
const schemaDir = `${root}schemas/`;
export const chartSchemaPath = fileURLToPath(
  new URL("../charts/fedgate/values.schema.json", import.meta.url),
);
const sourceFiles = [
  "config.schema.json",
  "policy.schema.json",
  "link.schema.json",
  "common.schema.json",
] as const;

export const chartBridgesPath = fileURLToPath(new URL("../charts/fedgate/bridges.yaml", import.meta.url));

/**
 * A bridge's deployment needs as the chart reads them (bridges.yaml): its own, its HTTP port's default, and its
 * status listener's default port (schemas/config.schema.json $defs/StatusListen), which every bridge has.
 */
export interface ChartBridge extends Omit<BridgeDeployment, "$schema" | "http"> {
  http?: BridgeDeployment["http"] & { defaultPort: number };
  status: { defaultPort: number };
}

/** The status listener's default port, which the chart's probes and monitors name when the config does not. */
async function statusDefaultPort(): Promise<number> {
  const config = JSON.parse(await readFile(`${schemaDir}config.schema.json`, "utf8")) as {
    $defs: { StatusListen?: { properties?: { port?: { default?: number } } } };
  };
  const port = config.$defs.StatusListen?.properties?.port?.default;
  if (port === undefined) throw new Error("chart: config.schema.json $defs/StatusListen.port has no default");
  return port;
}

/**
 * Every registered network's deployment needs (bridges/<network>/deployment.json, checked against
 * schemas/bridge-deployment.schema.json), with the default port of an HTTP bridge from its config schema.
 */
export async function chartBridges(): Promise<Record<BridgeNetwork, ChartBridge>> {
  const status = { defaultPort: await statusDefaultPort() };
  const entries = await Promise.all(
    bridgeNetworks.map(async (network): Promise<[BridgeNetwork, ChartBridge]> => {
      const file = `bridges/${network}/deployment.json`;
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the editor's hint, not a need
      const { $schema, http, ...needs } = validateDeployment(JSON.parse(await readFile(root + file, "utf8")));
      if (http === undefined) return [network, { ...needs, status }];
      const config = JSON.parse(await readFile(`${root}bridges/${network}/config.schema.json`, "utf8")) as {
        properties: { listen?: { properties?: { port?: { default?: number } } } };
      };
      const defaultPort = config.properties.listen?.properties?.port?.default;
      if (defaultPort === undefined)
        throw new Error(`chart: ${file} declares http, but bridges.${network}.listen.port has no default`);
      return [network, { ...needs, http: { ...http, defaultPort }, status }];
    }),
  );
  return Object.fromEntries(entries) as Record<BridgeNetwork, ChartBridge>;
}

const validateDeployment = validatorFor<BridgeDeployment>(
  "schemas/bridge-deployment.schema.json",
  "bridge deployment needs",
  "FG_CONFIG_INVALID",
);

/** charts/fedgate/bridges.yaml: what the templates range over for each bridge's Service, volumes and env. */
export async function renderChartBridges(): Promise<string> {
  return (
    "# Generated from bridges/*/deployment.json by `npm run generate` (scripts/chartSchema.ts). Do not edit.\n" +
    stringify(await chartBridges(), { lineWidth: 0 })
  );
}

/** What the chart puts into config.yaml itself; values.config must not set these. */
export const chartOwnedConfig = {
  gateway: { policyFile: "policy.yaml" },
  admin: { host: "0.0.0.0", token: { env: "FEDGATE_ADMIN_TOKEN" } },
} as const;

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The object at `key`; throws so that a reshaped source schema breaks the generator instead of the chart. */
function child(node: JsonObject, key: string): JsonObject {
  const value = node[key];
  if (!isObject(value)) throw new Error(`chart schema: expected an object at "${key}"`);
  return value;
}

function remove(node: JsonObject, ...keys: string[]): void {
  for (const key of keys) {
    if (!(key in node)) throw new Error(`chart schema: expected "${key}" in the source schema`);
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- keys are checked just above
    delete node[key];
  }
}

/**
 * The config schema as values.config sees it. The chart sets admin.host (probes and the Service need the pod
 * IP), admin.token and the policy location, so those keys are rejected. Values land in a ConfigMap, so a
 * secret may only be a reference ({env} or {file}), never a literal {value}.
 */
function chartConfig(source: JsonObject): JsonObject {
  const config = structuredClone(source);
  config["description"] =
    "The fedgate config file (schemas/config.schema.json), less what the chart sets itself: " +
    "admin.host, admin.token and gateway.policyFile/policy (the policy comes from values.policy).";
  const properties = child(config, "properties");

  const gateway = child(properties, "gateway");
  remove(child(gateway, "properties"), "policyFile", "policy");
  remove(gateway, "allOf"); // only the "policyFile or policy, not both" rule

  const admin = child(properties, "admin");
  const adminProperties = child(admin, "properties");
  remove(adminProperties, "host", "token");
  remove(admin, "required");
  child(adminProperties, "port")["minimum"] = 1; // port 0 (pick any) cannot be probed or served

  const secret = child(child(config, "$defs"), "Secret");
  const variants = secret["oneOf"];
  if (!Array.isArray(variants)) throw new Error("chart schema: expected Secret.oneOf");
  const refs = variants.filter(
    (v) => !(isObject(v) && Array.isArray(v["required"]) && v["required"].includes("value")),
  );
  if (refs.length !== variants.length - 1)
    throw new Error("chart schema: expected one literal {value} Secret variant");
  secret["oneOf"] = refs;
  secret["description"] =
    "A secret by reference: {env: NAME} (set it with extraEnv) or {file: path} (mount it with extraVolumes). " +
    "Literal values are not accepted because the config is stored in a ConfigMap.";
  return config;
}

/** Collects inlined definitions under #/$defs, named by the referenced schema's title or its $defs key. */
class Bundle {
  private readonly defs = new Map<string, JsonObject>();
  private readonly origins = new Map<string, string>();

  constructor(private readonly schemas: ReadonlyMap<string, JsonObject>) {}

  /** Adds a definition of the chart's own; names must not collide with inlined ones. */
  define(name: string, schema: JsonObject): string {
    this.claim(name, `chart:${name}`);
    this.defs.set(name, schema);
    return `#/$defs/${name}`;
  }

  /** Inlines `ref`, as written in the schema file `from`, and returns the local ref that replaces it. */
  include(ref: string, from: string): string {
    const hash = ref.indexOf("#");
    const file = (hash < 0 ? ref : ref.slice(0, hash)) || from;
    const pointer = hash < 0 ? "" : ref.slice(hash + 1);
    const schema = this.schemas.get(file);
    if (schema === undefined)
      throw new Error(`chart schema: ${from} refers to ${file}, which is not bundled`);
    let node: Json | undefined = schema;
    for (const part of pointer.split("/").slice(1)) {
      node = isObject(node) ? node[part.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined;
    }
    if (!isObject(node)) throw new Error(`chart schema: ${file}#${pointer} does not resolve`);
    const title = schema["title"];
    const name =
      pointer === "" ? (typeof title === "string" ? title : file) : (pointer.split("/").pop() ?? file);
    if (this.claim(name, `${file}#${pointer}`)) {
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- dropped: meaningless once inlined
      const { $schema, $id, $defs, ...body } = node;
      this.defs.set(name, this.localise(body, file) as JsonObject);
    }
    return `#/$defs/${name}`;
  }

  /** A copy of `node` (from `file`) with every $ref pointing into the bundle. */
  localise(node: Json, file: string): Json {
    if (Array.isArray(node)) return node.map((n) => this.localise(n, file));
    if (!isObject(node)) return node;
    const out: JsonObject = {};
    for (const [key, value] of Object.entries(node)) {
      out[key] =
        key === "$ref" && typeof value === "string" ? this.include(value, file) : this.localise(value, file);
    }
    return out;
  }

  /** True when `name` is new; false when it already holds the same origin; throws on a clash. */
  private claim(name: string, origin: string): boolean {
    const earlier = this.origins.get(name);
    if (earlier === undefined) {
      this.origins.set(name, origin);
      return true;
    }
    if (earlier !== origin)
      throw new Error(`chart schema: two definitions named ${name} (${earlier}, ${origin})`);
    return false;
  }

  sortedDefs(): JsonObject {
    return Object.fromEntries([...this.defs.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
}

const openObject = (description: string): JsonObject => ({ description, type: "object" });
const stringMap = (description: string): JsonObject => ({
  description,
  type: "object",
  additionalProperties: { type: "string" },
});
const namedList = (description: string, required: string[]): JsonObject => ({
  description,
  type: "array",
  items: {
    type: "object",
    required,
    properties: Object.fromEntries(required.map((key) => [key, { type: "string", minLength: 1 }])),
  },
});

/** The values document: fedgate's config and policy, plus the keys only the chart reads. */
async function valuesSchema(bundle: Bundle): Promise<JsonObject> {
  const quantities: JsonObject = {
    type: "object",
    additionalProperties: { oneOf: [{ type: "string" }, { type: "number" }] },
  };
  const resources = bundle.define("Resources", {
    description: "Kubernetes resource requests and limits for the container.",
    type: "object",
    additionalProperties: false,
    properties: {
      requests: quantities,
      limits: quantities,
      claims: { type: "array", items: { type: "object" } },
    },
  });
  const secretKeyName = (description: string, dflt: string, optional = false): JsonObject => ({
    description,
    type: "string",
    pattern: optional ? "^[-._a-zA-Z0-9]*$" : "^[-._a-zA-Z0-9]+$",
    default: dflt,
  });
  const peers = bundle.define("NetworkPolicyPeers", {
    description:
      "Kubernetes NetworkPolicyPeers (podSelector, namespaceSelector, ipBlock); empty: any address.",
    type: "array",
    items: {
      type: "object",
      additionalProperties: false,
      minProperties: 1,
      properties: {
        podSelector: { type: "object" },
        namespaceSelector: { type: "object" },
        ipBlock: {
          type: "object",
          required: ["cidr"],
          properties: { cidr: { type: "string" }, except: { type: "array", items: { type: "string" } } },
        },
      },
    },
  });
  const policyPorts = bundle.define("NetworkPolicyPorts", {
    description: "Kubernetes NetworkPolicyPorts; protocol TCP unless given.",
    type: "array",
    items: {
      type: "object",
      additionalProperties: false,
      required: ["port"],
      properties: {
        port: {
          oneOf: [
            { type: "integer", minimum: 1, maximum: 65535 },
            { type: "string", minLength: 1 },
          ],
        },
        endPort: { type: "integer", minimum: 1, maximum: 65535 },
        protocol: { enum: ["TCP", "UDP", "SCTP"] },
      },
    },
  });
  const egressRules = bundle.define("NetworkPolicyEgressRules", {
    description: "More Kubernetes NetworkPolicyEgressRules ({to, ports}) for the component.",
    type: "array",
    items: { type: "object" },
  });
  const peersOnly = (description: string): JsonObject => ({
    description,
    type: "object",
    additionalProperties: false,
    properties: { to: { $ref: peers } },
  });
  /** What each component (gateway, bridges.<network>) may set for its own pods, over the global keys. */
  const componentPod: JsonObject = {
    nodeSelector: stringMap("This component's nodeSelector; replaces the global one, even when empty."),
    affinity: openObject("This component's affinity; replaces the global one, even when empty."),
    tolerations: {
      description: "This component's tolerations; replace the global ones, even when empty.",
      type: "array",
      items: { type: "object" },
    },
    podAnnotations: stringMap("Annotations on this component's pods, over the global podAnnotations."),
    deploymentAnnotations: stringMap(
      "Annotations on this component's Deployment, over the global deploymentAnnotations.",
    ),
    extraVolumes: namedList("More volumes for this component's pods, after the global extraVolumes.", [
      "name",
    ]),
    extraVolumeMounts: namedList("Where this component's extra volumes are mounted.", ["name", "mountPath"]),
  };
  /** bridges.<network>.<store.values>: the Secret with the store's key and the claim its files live on. */
  const storeValues = (network: BridgeNetwork, store: NonNullable<ChartBridge["store"]>): JsonObject => {
    const section = `config.bridges.${network}.${store.section}`;
    return {
      description:
        `Where ${store.holds} are kept when ${section}.enabled is true: the key from an existing Secret ` +
        `(mounted read-only at ${store.keyMountPath}) and the files on a PersistentVolumeClaim (mounted at ` +
        `${store.dataMountPath}), never in the image. The chart points ${section}.storeKeyFile and .storeFile ` +
        "at them, unless those are set.",
      type: "object",
      additionalProperties: false,
      properties: {
        keySecret: {
          description: `An existing Secret holding the store's key (a random secret of at least 32 characters).`,
          type: "object",
          additionalProperties: false,
          properties: {
            name: {
              description: `Empty: mount the key yourself (extraVolumes) and set ${section}.storeKeyFile.`,
              type: "string",
              default: "",
            },
            key: secretKeyName("Key of the store's key in that Secret.", store.defaultKey),
          },
        },
        persistence: {
          description:
            "The claim the store's files live on. The chart creates one (kept when the release is deleted, " +
            "so the bridge's devices survive a reinstall) unless existingClaim names one.",
          type: "object",
          additionalProperties: false,
          properties: {
            existingClaim: {
              description: "Empty: the chart creates the claim.",
              type: "string",
              default: "",
            },
            size: { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?([KMGT]i?)?$", default: "1Gi" },
            storageClass: {
              description: "Empty: the cluster's default storage class.",
              type: "string",
              default: "",
            },
          },
        },
      },
    };
  };
  /** bridges.<network> in the values: the Deployment's switch and resources, and the Secrets it needs. */
  const bridgeValues = (network: BridgeNetwork, needs: ChartBridge): string => {
    const properties: JsonObject = {
      enabled: { type: "boolean", default: false },
      resources: { $ref: resources },
      ...componentPod,
    };
    const { secretFile, secretEnv } = needs;
    if (secretFile !== undefined)
      properties[secretFile.values] = {
        description:
          `An existing Secret holding ${secretFile.holds}, mounted in the bridge's pod at ${secretFile.mountPath}. ` +
          `The chart points config.bridges.${network}.${secretFile.configKey} at it, unless that is set.`,
        type: "object",
        additionalProperties: false,
        properties: {
          name: { description: "Empty: no Secret is mounted.", type: "string" },
          key: secretKeyName("Key of the file in that Secret.", secretFile.defaultKey),
        },
      };
    if (secretEnv !== undefined)
      properties[secretEnv.values] = {
        description:
          `An existing Secret holding ${secretEnv.holds}, given to the bridge's container only as ` +
          `${secretEnv.vars.map((v) => v.env).join(" and ")}. The chart points ` +
          `${secretEnv.vars.map((v) => `config.bridges.${network}.${v.configKey}`).join(" and ")} at them, ` +
          "unless those are set.",
        type: "object",
        additionalProperties: false,
        properties: {
          name: { description: "Empty: no env vars are set from a Secret.", type: "string" },
          ...Object.fromEntries(
            secretEnv.vars.map((v) => [
              v.secretKey,
              secretKeyName(`Key of ${v.description} in that Secret.`, v.defaultKey, !v.required),
            ]),
          ),
        },
      };
    if (needs.store !== undefined) properties[needs.store.values] = storeValues(network, needs.store);
    properties["networkPolicy"] = {
      description:
        `What the ${needs.label} bridge's NetworkPolicy allows besides DNS, NATS, the OTLP collector and the ` +
        "other bridges (with networkPolicy.enabled).",
      type: "object",
      additionalProperties: false,
      properties: {
        server: {
          description: `The ${needs.label} bridge's own server, which it connects to: required with networkPolicy.enabled.`,
          type: "object",
          additionalProperties: false,
          properties: { to: { $ref: peers }, ports: { $ref: policyPorts } },
        },
        ...(needs.http === undefined
          ? {}
          : {
              httpFrom: {
                $ref: peers,
                description: `Who else may call its ${needs.http.portName} port (${needs.http.purpose}); the other bridges may.`,
              },
            }),
        extraEgress: { $ref: egressRules },
      },
    };
    const service = needs.http === undefined ? "" : ` and its ClusterIP Service (${needs.http.purpose})`;
    return bundle.define(`${needs.label}Bridge`, {
      description:
        `The ${needs.label} bridge's Deployment (1 replica)${service}; its settings go under ` +
        `config.bridges.${network}.`,
      type: "object",
      additionalProperties: false,
      properties,
    });
  };
  const bridges = await chartBridges();

  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $comment: "Generated from schemas/ by `npm run generate` (scripts/chartSchema.ts). Do not edit.",
    title: "fedgate chart values",
    type: "object",
    additionalProperties: false,
    required: ["image", "config", "policy"],
    properties: {
      global: openObject("Helm passes global values to every chart and subchart."),
      nameOverride: { type: "string" },
      fullnameOverride: { type: "string" },
      image: {
        type: "object",
        additionalProperties: false,
        required: ["repository"],
        properties: {
          repository: { type: "string", minLength: 1 },
          tag: { description: "Empty: the chart's appVersion.", type: "string" },
          digest: {
            description: "The image's digest; when set, pods run repository@digest and the tag is ignored.",
            type: "string",
            pattern: "^sha256:[0-9a-f]{64}$",
          },
          pullPolicy: { enum: ["Always", "IfNotPresent", "Never"], default: "IfNotPresent" },
        },
      },
      imagePullSecrets: namedList("Secrets to pull the image with (LocalObjectReference), for every pod.", [
        "name",
      ]),
      gateway: {
        description: "The routing core: stateless, so any number of replicas share the work.",
        type: "object",
        additionalProperties: false,
        properties: {
          replicas: { type: "integer", minimum: 1, default: 1 },
          resources: { $ref: resources },
          ...componentPod,
          federationSecret: {
            description:
              "A Secret with the files config.federation refers to (partners' authority keys, this gateway's grant signing key), mounted read-only at /etc/fedgate-federation in the gateway's pods only: the bridges never see the signing key. Empty: none.",
            type: "string",
            default: "",
          },
          podDisruptionBudget: {
            type: "object",
            additionalProperties: false,
            properties: {
              enabled: { type: "boolean", default: false },
              minAvailable: {
                description: "A pod count below gateway.replicas, or a percentage.",
                oneOf: [
                  { type: "integer", minimum: 0 },
                  { type: "string", pattern: "^[0-9]{1,3}%$" },
                ],
              },
            },
          },
        },
      },
      bridges: {
        type: "object",
        additionalProperties: false,
        properties: Object.fromEntries(
          bridgeNetworks.map((name) => [name, { $ref: bridgeValues(name, bridges[name]) }]),
        ),
      },
      nats: {
        description:
          "NATS's TLS files and login from existing Secrets, mounted read-only in every pod; the chart points config.nats at them unless it sets them.",
        type: "object",
        additionalProperties: false,
        properties: {
          tlsSecret: {
            description:
              "The CA of the NATS servers' certificates and, for a NATS that verifies clients, a client certificate and key; mounted at /etc/fedgate-nats/tls (config.nats.tls).",
            type: "object",
            additionalProperties: false,
            properties: {
              name: { description: "Empty: none.", type: "string" },
              caKey: secretKeyName("Key of the CA in that Secret.", "ca.crt"),
              certKey: secretKeyName(
                "Key of the client certificate; empty: no client certificate.",
                "tls.crt",
                true,
              ),
              keyKey: secretKeyName("Key of the client certificate's private key.", "tls.key"),
            },
          },
          credentialsSecret: {
            description:
              "The login, one of a .creds file, an nkey seed, a password (for config.nats.user) or a token; mounted at /etc/fedgate-nats/login, and config.nats.credsFile, nkeySeed, password or token read from there.",
            type: "object",
            additionalProperties: false,
            properties: {
              name: { description: "Empty: none.", type: "string" },
              credsKey: secretKeyName("Key of a .creds file (user JWT and seed) in that Secret.", "", true),
              nkeySeedKey: secretKeyName("Key of an nkey seed in that Secret.", "", true),
              passwordKey: secretKeyName("Key of config.nats.user's password in that Secret.", "", true),
              tokenKey: secretKeyName("Key of a NATS token in that Secret.", "", true),
            },
          },
        },
      },
      networkPolicy: {
        description:
          "A NetworkPolicy per component: out only to DNS, NATS, the OTLP collector and (bridges) their own server and the other bridges' files; in only on the ports each serves.",
        type: "object",
        additionalProperties: false,
        properties: {
          enabled: { type: "boolean", default: false },
          dns: {
            description: "Where pods resolve names.",
            type: "object",
            additionalProperties: false,
            properties: { to: { $ref: peers }, ports: { $ref: policyPorts } },
          },
          nats: peersOnly("The NATS servers; the ports are those of config.nats.url."),
          otlp: peersOnly("The OTLP collector; the port is that of config.telemetry.otlpEndpoint."),
          adminFrom: {
            $ref: peers,
            description: "Who may reach the core's admin port (API, /metrics); empty: anyone.",
          },
          metricsFrom: {
            $ref: peers,
            description: "Who may reach the bridges' status listeners (/metrics); empty: anyone.",
          },
          gateway: {
            type: "object",
            additionalProperties: false,
            properties: { extraEgress: { $ref: egressRules } },
          },
        },
      },
      serviceMonitor: {
        description:
          "A Prometheus Operator ServiceMonitor for the core's /metrics (on the admin port); needs the operator's CRDs.",
        type: "object",
        additionalProperties: false,
        properties: {
          enabled: { type: "boolean", default: false },
          interval: { type: "string", pattern: "^[0-9]+(ms|s|m|h)$", default: "30s" },
          labels: stringMap("Labels on the ServiceMonitor, e.g. the one your Prometheus selects."),
        },
      },
      admin: {
        description: "Where the admin API's bearer token comes from.",
        type: "object",
        additionalProperties: false,
        required: ["secretKey"],
        properties: {
          existingSecret: {
            description:
              "Name of a Secret holding the token. Empty: the chart creates one with a random token.",
            type: "string",
          },
          secretKey: {
            description: "Key of the token in that Secret.",
            type: "string",
            pattern: "^[-._a-zA-Z0-9]+$",
          },
        },
      },
      serviceAccount: {
        type: "object",
        additionalProperties: false,
        properties: {
          create: { type: "boolean", default: true },
          name: {
            description: "Empty: the release's full name (or default when create is false).",
            type: "string",
          },
          annotations: stringMap("Annotations on the ServiceAccount, e.g. for workload identity."),
        },
      },
      podSecurityContext: openObject("Kubernetes PodSecurityContext for every fedgate pod."),
      securityContext: openObject("Kubernetes SecurityContext for every fedgate container."),
      nodeSelector: stringMap("Kubernetes nodeSelector for every fedgate pod."),
      tolerations: {
        description: "Kubernetes tolerations for every fedgate pod.",
        type: "array",
        items: { type: "object" },
      },
      affinity: openObject("Kubernetes affinity for every fedgate pod."),
      topologySpreadConstraints: {
        description: "Kubernetes topologySpreadConstraints for every fedgate pod.",
        type: "array",
        items: { type: "object" },
      },
      podAnnotations: stringMap("Annotations on every fedgate pod."),
      deploymentAnnotations: stringMap(
        "Annotations on every fedgate Deployment, e.g. for a controller that restarts it when its Secrets change.",
      ),
      podLabels: stringMap("Labels on every fedgate pod, besides the chart's own (which its selectors use)."),
      extraEnv: namedList(
        "Extra environment variables (EnvVar) for every container, e.g. for {env} secret refs.",
        ["name"],
      ),
      extraVolumes: namedList("Extra pod volumes, e.g. Secrets for {file} secret refs.", ["name"]),
      extraVolumeMounts: namedList("Where the extra volumes are mounted in every container.", [
        "name",
        "mountPath",
      ]),
      config: { $ref: bundle.include("config.schema.json", "values") },
      policy: { $ref: bundle.include("policy.schema.json", "values") },
    },
    $defs: bundle.sortedDefs(),
  };
}

/** Renders values.schema.json, formatted as the repository formats JSON. */
export async function renderChartSchema(): Promise<string> {
  const schemas = new Map<string, JsonObject>();
  for (const file of sourceFiles) {
    const schema = JSON.parse(await readFile(schemaDir + file, "utf8")) as JsonObject;
    schemas.set(file, file === "config.schema.json" ? chartConfig(schema) : schema);
  }
  const schema = await valuesSchema(new Bundle(schemas));
  return format(JSON.stringify(schema, null, 2), { parser: "json", printWidth: 110 });
}
