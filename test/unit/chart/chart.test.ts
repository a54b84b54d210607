import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it, vi } from "vitest";
import { parse, stringify } from "yaml";
import { bridgeNetworks, type BridgeNetwork } from "../../../bridges/index.js";
import {
  chartBridges,
  chartBridgesPath,
  chartOwnedConfig,
  chartSchemaPath,
  renderChartBridges,
  renderChartSchema,
} from "../../../scripts/chartSchema.js";
import { validateConfig } from "../../../schemas/contract/schemas.js";
import { loadConfig } from "../../../gateway/platform/config/loadConfig.js";
import { checkDeclaredLinks, loadPolicy } from "../../../gateway/core/GatewayService.js";
import { matrixSection } from "../../../bridges/matrix/config.js";
import { loadStashcatConfig, type LoadedStashcatConfig } from "../../../bridges/stashcat/config.js";
import { scratchDir } from "../../helpers/scratchDir.js";
import {
  helmLint,
  helmPackages,
  helmTemplate,
  type HelmPackage,
  type RenderedChart,
  type RenderOptions,
} from "../../harness/helm/realHelm.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
/** The env vars the Stashcat bridge's deployment needs name (bridges/stashcat/deployment.json). */
const stashcatCredentialEnv = Object.fromEntries(
  ((await chartBridges()).stashcat.secretEnv?.vars ?? []).map((v) => [v.configKey, v.env]),
) as { password: string; encryptionPassword: string };
const chartDir = join(root, "charts/fedgate");
const valuesFiles = {
  "charts/fedgate/values.yaml": join(chartDir, "values.yaml"),
  "helm.yaml": join(root, "helm.yaml"),
};

type Values = Record<string, unknown> & { config: Record<string, unknown>; policy: unknown };

async function readValues(file: string): Promise<Values> {
  return parse(await readFile(file, "utf8")) as Values;
}

async function valuesValidator(): Promise<(value: unknown) => ErrorObject[]> {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats.default(ajv);
  const validate = ajv.compile(JSON.parse(await readFile(chartSchemaPath, "utf8")) as object);
  return (value) => (validate(value) ? [] : (validate.errors ?? []));
}

const renders = new Map<string, Promise<RenderedChart>>();

/**
 * `helm template` of charts/fedgate, run once per options in this file: tests read the manifests and the
 * config of the same values, and each run starts helm anew. Each caller gets a copy of its own.
 */
async function renderChart(options: RenderOptions): Promise<RenderedChart> {
  const key = JSON.stringify(options);
  let rendered = renders.get(key);
  if (rendered === undefined) {
    rendered = helmTemplate(chartDir, options);
    renders.set(key, rendered);
  }
  return structuredClone(await rendered);
}

/** What templates/_helpers.tpl (fedgate.configYaml) writes to config.yaml, as the ConfigMap holds it. */
async function renderedConfig(values: Values, helm: HelmPackage): Promise<Record<string, unknown>> {
  const configMap = find(await renderChart({ values, helm }), "ConfigMap", "fedgate-config");
  return parse((configMap["data"] as Record<string, string>)["config.yaml"] ?? "") as Record<string, unknown>;
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  image?: string;
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  ports?: { name: string; containerPort: number }[];
  startupProbe?: Record<string, unknown>;
  livenessProbe?: Record<string, unknown>;
  readinessProbe?: Record<string, unknown>;
}
interface PodSpec {
  volumes: ({ name: string } & Record<string, unknown>)[];
  containers: Container[];
}
interface Deployment extends Manifest {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: PodSpec;
    };
  };
}
interface Service extends Manifest {
  spec: {
    type: string;
    selector: Record<string, string>;
    ports: { name: string; port: number; targetPort: string | number; protocol: string }[];
  };
}

function find(rendered: RenderedChart, kind: string, name: string): Manifest {
  const found = (rendered.manifests as unknown as Manifest[]).find(
    (m) => m.kind === kind && m.metadata.name === name,
  );
  if (found === undefined) throw new Error(`no ${kind} ${name} rendered`);
  return found;
}

const named = (rendered: RenderedChart, kind: string): string[] =>
  (rendered.manifests as unknown as Manifest[]).filter((m) => m.kind === kind).map((m) => m.metadata.name);

/** helm.yaml with bridges.NAME (but for its networkPolicy) and config.bridges.NAME replaced. */
async function withBridge(
  name: BridgeNetwork,
  bridge: Record<string, unknown>,
  section: Record<string, unknown>,
): Promise<Values> {
  const values = await readValues(valuesFiles["helm.yaml"]);
  const bridges = values["bridges"] as Record<string, { networkPolicy?: unknown }>;
  const config = values.config;
  return {
    ...values,
    bridges: { ...bridges, [name]: { networkPolicy: bridges[name]?.networkPolicy, ...bridge } },
    config: { ...config, bridges: { ...(config["bridges"] as object), [name]: section } },
  };
}

const withMatrix = (bridge: Record<string, unknown>, section: Record<string, unknown>): Promise<Values> =>
  withBridge("matrix", bridge, section);
const withStashcat = (bridge: Record<string, unknown>, section: Record<string, unknown>): Promise<Values> =>
  withBridge("stashcat", bridge, section);

const tchap = { instance: "tchap", homeserverUrl: "http://synapse:8008", serverName: "tchap.example" };
const ni = {
  instance: "ni",
  apiUrl: "https://api.stashcat.com/",
  pushUrl: "https://push.stashcat.com",
  email: "bridge@polizei.example",
};

const bpol = {
  instance: "bpol",
  service: "xmpp://prosody:5347",
  domain: "fedgate.bpol.example",
  userDomains: ["bpol.example"],
  mucDomains: ["conference.bpol.example"],
};
/** helm.yaml with the XMPP bridge's section replaced and every bridge enabled. */
async function everyBridge(): Promise<Values> {
  const values = await withBridge(
    "xmpp",
    { enabled: true, componentSecret: { name: "xmpp-component" } },
    bpol,
  );
  const bridges = values["bridges"] as Record<string, object>;
  return {
    ...values,
    bridges: Object.fromEntries(bridgeNetworks.map((name) => [name, { ...bridges[name], enabled: true }])),
  };
}

/** The values every rendering check runs with. */
const renderCases: [string, () => Promise<Values>][] = [
  ["charts/fedgate/values.yaml", () => readValues(valuesFiles["charts/fedgate/values.yaml"])],
  ["helm.yaml", () => readValues(valuesFiles["helm.yaml"])],
  ["helm.yaml with every bridge enabled", everyBridge],
];

type ApiModel = new (data: unknown) => { validate(): void };

/**
 * Each object's errors against the Kubernetes API's OpenAPI schemas, as kubernetes-models compiles them:
 * types, formats, enums and required fields (unknown fields pass), offline, one module per kind.
 */
async function apiSchemaErrors(manifests: readonly Manifest[]): Promise<string[]> {
  const errors: string[] = [];
  for (const manifest of manifests) {
    const what = `${manifest.apiVersion} ${manifest.kind} ${manifest.metadata.name}`;
    let model: ApiModel | undefined;
    try {
      const api = (await import(`kubernetes-models/${manifest.apiVersion}/${manifest.kind}`)) as Record<
        string,
        ApiModel | undefined
      >;
      model = api[manifest.kind];
    } catch {
      model = undefined;
    }
    if (model === undefined) {
      errors.push(`${what}: no such kind in the Kubernetes API`);
      continue;
    }
    try {
      new model(manifest).validate();
    } catch (error) {
      errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return errors;
}

const envNames = (container: Container | undefined): string[] => (container?.env ?? []).map((e) => e.name);

/**
 * The rendered config.yaml's Stashcat section as the bridge's container loads it, secrets included: with the
 * env its Deployment gives, a secretKeyRef's value being "<secret>/<key>".
 */
async function stashcatInPod(values: Values, helm: HelmPackage): Promise<LoadedStashcatConfig> {
  const rendered = await renderChart({ values, helm });
  const pod = (find(rendered, "Deployment", "fedgate-bridge-stashcat") as Deployment).spec.template.spec;
  const dir = await scratchDir("chart");
  await writeFile(join(dir, "config.yaml"), stringify(await renderedConfig(values, helm)));
  const loaded = await loadConfig(join(dir, "config.yaml"), {});
  try {
    for (const { name, value, valueFrom } of pod.containers[0]?.env ?? []) {
      const ref = valueFrom?.secretKeyRef;
      vi.stubEnv(name, ref === undefined ? (value ?? "") : `${ref.name}/${ref.key}`);
    }
    return await loadStashcatConfig(loaded);
  } finally {
    vi.unstubAllEnvs();
  }
}

describe("chart - values and schema", () => {
  it("chart - values.schema.json is what the schemas generate (run npm run generate)", async () => {
    expect(await readFile(chartSchemaPath, "utf8")).toBe(await renderChartSchema());
  });

  it("chart - bridges.yaml is what the bridges' deployment needs generate (run npm run generate)", async () => {
    expect(await readFile(chartBridgesPath, "utf8")).toBe(await renderChartBridges());
    expect(Object.keys(parse(await readFile(chartBridgesPath, "utf8")) as object).sort()).toEqual(
      [...bridgeNetworks].sort(),
    );
  });

  it.each(Object.entries(valuesFiles))(
    "chart - %s validates against values.schema.json",
    async (_name, file) => {
      const values = await readValues(file);
      expect((await valuesValidator())(values)).toEqual([]);
      // templates/poddisruptionbudget.yaml fails the install otherwise: such a budget would block node drains.
      const gateway = values["gateway"] as {
        replicas: number;
        podDisruptionBudget: { enabled: boolean; minAvailable: unknown };
      };
      const { enabled, minAvailable } = gateway.podDisruptionBudget;
      if (enabled && typeof minAvailable === "number") expect(minAvailable).toBeLessThan(gateway.replicas);
    },
  );

  it("chart - a misspelt key is rejected and named", async () => {
    const validate = await valuesValidator();
    const values = await readValues(valuesFiles["helm.yaml"]);
    const nats = values.config["nats"] as Record<string, unknown>;
    nats["urll"] = nats["url"];
    expect(validate(values)).toContainEqual(
      expect.objectContaining({
        instancePath: "/config/nats",
        keyword: "additionalProperties",
        params: { additionalProperty: "urll" },
      }),
    );

    const typo = { ...(await readValues(valuesFiles["helm.yaml"])), gatway: { replicas: 3 } };
    expect(validate(typo)).toContainEqual(
      expect.objectContaining({ instancePath: "", params: { additionalProperty: "gatway" } }),
    );
  });

  it("chart - keys the chart sets itself, and literal secrets, are rejected in values.config", async () => {
    const validate = await valuesValidator();
    const base = await readValues(valuesFiles["charts/fedgate/values.yaml"]);
    const withConfig = (config: Record<string, unknown>): Values => ({
      ...base,
      config: { ...base.config, ...config },
    });
    const nats = base.config["nats"] as object;

    expect(validate(withConfig({ admin: { token: { env: "X" } } }))).toContainEqual(
      expect.objectContaining({ instancePath: "/config/admin", params: { additionalProperty: "token" } }),
    );
    expect(validate(withConfig({ gateway: { policyFile: "other.yaml" } }))).toContainEqual(
      expect.objectContaining({
        instancePath: "/config/gateway",
        params: { additionalProperty: "policyFile" },
      }),
    );
    const literal = validate(withConfig({ nats: { ...nats, password: { value: "hunter2" } } }));
    expect(literal.some((e) => e.instancePath === "/config/nats/password")).toBe(true);
    expect(validate(withConfig({ nats: { ...nats, password: { env: "NATS_PASSWORD" } } }))).toEqual([]);
  });

  it("chart - the chart's own keys are checked too", async () => {
    const validate = await valuesValidator();
    const base = await readValues(valuesFiles["charts/fedgate/values.yaml"]);
    expect(validate({ ...base, bridges: { matrx: { enabled: true } } })).toContainEqual(
      expect.objectContaining({ instancePath: "/bridges", params: { additionalProperty: "matrx" } }),
    );
    expect(
      validate({ ...base, bridges: { matrix: { enabled: true, registrationSecret: { nam: "as" } } } }),
    ).toContainEqual(
      expect.objectContaining({
        instancePath: "/bridges/matrix/registrationSecret",
        params: { additionalProperty: "nam" },
      }),
    );
    expect(validate({ ...base, bridges: { xmpp: { registrationSecret: { name: "as" } } } })).toContainEqual(
      expect.objectContaining({
        instancePath: "/bridges/xmpp",
        params: { additionalProperty: "registrationSecret" },
      }),
    );
    expect(
      validate({
        ...base,
        bridges: { stashcat: { enabled: true, credentialsSecret: { passwordkey: "pw" } } },
      }),
    ).toContainEqual(
      expect.objectContaining({
        instancePath: "/bridges/stashcat/credentialsSecret",
        params: { additionalProperty: "passwordkey" },
      }),
    );
    expect(validate({ ...base, bridges: { xmpp: { credentialsSecret: { name: "sc" } } } })).toContainEqual(
      expect.objectContaining({
        instancePath: "/bridges/xmpp",
        params: { additionalProperty: "credentialsSecret" },
      }),
    );
    // No encryption password key: the login password opens the account's key.
    expect(
      validate({
        ...base,
        bridges: { stashcat: { credentialsSecret: { name: "sc", encryptionPasswordKey: "" } } },
      }),
    ).toEqual([]);
    expect(validate({ ...base, gateway: { replicas: 0 } }).map((e) => e.instancePath)).toContain(
      "/gateway/replicas",
    );
    expect(
      validate({ ...base, gateway: { podDisruptionBudget: { enabled: true, minAvailable: "50%" } } }),
    ).toEqual([]);
  });

  it("chart - the templates use the names the schema generator assumes", async () => {
    const helpers = await readFile(join(chartDir, "templates/_helpers.tpl"), "utf8");
    expect(helpers).toContain(`"policyFile" "${chartOwnedConfig.gateway.policyFile}"`);
    expect(helpers).toContain(`"host" "${chartOwnedConfig.admin.host}"`);
    expect(helpers).toContain(`(dict "env" "${chartOwnedConfig.admin.token.env}")`);
    const gateway = await readFile(join(chartDir, "templates/deployment-gateway.yaml"), "utf8");
    expect(gateway).toContain(`name: ${chartOwnedConfig.admin.token.env}`);
    const bridges = await readFile(join(chartDir, "templates/deployment-bridges.yaml"), "utf8");
    // The templates take the bridges from the values, whose schema the bridge registry generates.
    expect(bridges).toContain("range $name, $values := .Values.bridges");
    for (const template of [bridges, await readFile(join(chartDir, "templates/NOTES.txt"), "utf8")])
      expect(template).not.toMatch(new RegExp(`list "(${bridgeNetworks.join("|")})"`));
    const values = await readValues(valuesFiles["charts/fedgate/values.yaml"]);
    // values.yaml shows the bridges it knows, switched off; a network it does not list is enabled by naming it.
    for (const name of Object.keys(values["bridges"] as object)) expect(bridgeNetworks).toContain(name);
    // No template names a network: what one needs comes from bridges.yaml.
    for (const template of ["_helpers.tpl", "deployment-bridges.yaml", "service-bridges.yaml", "NOTES.txt"])
      expect(await readFile(join(chartDir, "templates", template), "utf8"), template).not.toMatch(
        new RegExp(`"(${bridgeNetworks.join("|")})"|\\b(${bridgeNetworks.join("|")})[A-Z]`),
      );

    // The HTTP bridges' default ports are the bridges' own (listen.port in their config schemas).
    for (const [name, needs] of Object.entries(await chartBridges())) {
      if (needs.http === undefined) continue;
      const schema = JSON.parse(await readFile(join(root, `bridges/${name}/config.schema.json`), "utf8")) as {
        properties: { listen: { properties: { port: { default: number } } } };
      };
      expect(needs.http.defaultPort, name).toBe(schema.properties.listen.properties.port.default);
    }
  });
});

describe.each(helmPackages)("chart - rendered by helm from %s", (helm) => {
  const render = (options: Omit<RenderOptions, "helm"> = {}): Promise<RenderedChart> =>
    renderChart({ ...options, helm });

  describe("chart - the config it renders", () => {
    it.each(Object.entries(valuesFiles))(
      "chart - %s renders a config that fedgate accepts",
      async (_name, file) => {
        const values = await readValues(file);
        const config = await renderedConfig(values, helm);
        expect(() => validateConfig(structuredClone(config))).not.toThrow();

        // The ConfigMap as mounted at /etc/fedgate: the policy file is found next to the config, links name known agencies.
        const dir = await scratchDir("chart");
        await writeFile(join(dir, "config.yaml"), stringify(config));
        await writeFile(join(dir, "policy.yaml"), stringify(values.policy));
        const loaded = await loadConfig(join(dir, "config.yaml"), {});
        const policy = await loadPolicy(loaded);
        expect(() => checkDeclaredLinks(loaded.config, loaded.file, policy)).not.toThrow();
        expect(loaded.config.admin?.host).toBe("0.0.0.0");
        for (const [name, section] of Object.entries(chartOwnedConfig))
          expect(config[name]).toMatchObject(section);
        // Each enabled bridge's section as the bridge reads it.
        const bridges = values["bridges"] as Record<string, { enabled: boolean }>;
        if (bridges["matrix"]?.enabled) expect(() => matrixSection(loaded)).not.toThrow();
        // The Stashcat bridge's secrets too, from the env its Deployment gives.
        if (bridges["stashcat"]?.enabled) await expect(stashcatInPod(values, helm)).resolves.toBeDefined();
      },
    );

    it("chart - each enabled bridge may fetch the files the other bridges serve: their Services join its attachments.hosts", async () => {
      const all = await everyBridge();
      const hostsOf = async (values: Values): Promise<Record<string, unknown>> => {
        const bridges = (await renderedConfig(values, helm))["bridges"] as Record<
          string,
          { attachments?: unknown }
        >;
        return Object.fromEntries(
          Object.entries(bridges).map(([name, section]) => [name, section.attachments]),
        );
      };
      // The lists the values give come first; a bridge is not told to trust itself.
      expect(await hostsOf(all)).toEqual({
        xmpp: { hosts: ["http://fedgate-bridge-matrix:9000", "http://fedgate-bridge-stashcat:9100"] },
        matrix: { hosts: ["upload.bpol.example", "http://fedgate-bridge-stashcat:9100"], publicHosts: false },
        stashcat: { hosts: ["upload.bpol.example", "http://fedgate-bridge-matrix:9000"], publicHosts: false },
      });

      // A publicUrl of the values' own is what the others trust; a disabled bridge is trusted by no one.
      const bridges = all["bridges"] as Record<string, unknown>;
      const config = all.config["bridges"] as Record<string, Record<string, unknown>>;
      const elsewhere = {
        ...all,
        bridges: { ...bridges, matrix: { ...(bridges["matrix"] as object), enabled: false } },
        config: {
          ...all.config,
          bridges: { ...config, stashcat: { ...config["stashcat"], publicUrl: "https://files.ni.example/" } },
        },
      };
      expect(await hostsOf(elsewhere)).toMatchObject({
        xmpp: { hosts: ["https://files.ni.example/"] },
        stashcat: { hosts: ["upload.bpol.example"] },
      });
    });
  });

  describe("chart - the manifests it renders", () => {
    it.each(renderCases)("chart - helm lint --strict passes with %s", async (_name, values) => {
      const file = join(await scratchDir("chart"), "values.json");
      await writeFile(file, JSON.stringify(await values()));
      expect(await helmLint(chartDir, file, helm)).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    });

    it.each(renderCases)(
      "chart - %s renders objects that the Kubernetes API schemas accept",
      async (_name, values) => {
        const rendered = await render({ values: await values(), namespace: "fedgate" });
        const kinds = (rendered.manifests as unknown as Manifest[]).map((m) => m.kind);
        expect(kinds).toEqual(
          expect.arrayContaining(["ConfigMap", "Deployment", "Service", "ServiceAccount"]),
        );
        expect(await apiSchemaErrors(rendered.manifests as unknown as Manifest[])).toEqual([]);
      },
    );

    it("chart - the Kubernetes API schemas catch a wrong type, a missing field and an unknown kind", async () => {
      const rendered = await render({ values: await readValues(valuesFiles["helm.yaml"]) });
      const deployment = structuredClone(find(rendered, "Deployment", "fedgate-bridge-matrix")) as Deployment;
      const [container] = deployment.spec.template.spec.containers;
      const [port] = container?.ports ?? [];
      if (port === undefined) throw new Error("the Matrix bridge's container has no port");
      (port as { containerPort: unknown }).containerPort = "9000";
      const service = structuredClone(find(rendered, "Service", "fedgate-bridge-matrix")) as Service;
      (service.spec as Partial<Service["spec"]>).ports = [{ name: "x" } as Service["spec"]["ports"][number]];
      const errors = await apiSchemaErrors([
        deployment,
        service,
        { apiVersion: "apps/v1", kind: "Deploymnt", metadata: { name: "typo" } },
      ]);
      expect(errors).toEqual([
        expect.stringMatching(/^apps\/v1 Deployment fedgate-bridge-matrix: .*containerPort must be integer/),
        expect.stringMatching(/^v1 Service fedgate-bridge-matrix: .*must have required property port/),
        "apps/v1 Deploymnt typo: no such kind in the Kubernetes API",
      ]);
    });

    it.each(renderCases)(
      "chart - %s renders manifests whose references hold together",
      async (_name, values) => {
        const rendered = await render({ values: await values(), namespace: "fedgate" });
        const manifests = rendered.manifests as unknown as Manifest[];
        for (const m of manifests) {
          expect(m.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
          expect(m.metadata.labels?.["app.kubernetes.io/instance"]).toBe("fedgate");
        }
        const deployments = manifests.filter((m): m is Deployment => m.kind === "Deployment");
        for (const d of deployments) {
          const pod = d.spec.template.spec;
          expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
          const volumes = pod.volumes.map((v) => v.name);
          expect(new Set(volumes).size).toBe(volumes.length);
          for (const c of pod.containers)
            for (const mount of c.volumeMounts ?? []) expect(volumes).toContain(mount.name);
        }
        // Every Service selects the pods of exactly one Deployment, on a port its container names.
        for (const service of manifests.filter((m): m is Service => m.kind === "Service")) {
          const targets = deployments.filter((d) =>
            Object.entries(service.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
          );
          expect(targets, service.metadata.name).toHaveLength(1);
          const ports = targets[0]?.spec.template.spec.containers.flatMap((c) => c.ports ?? []) ?? [];
          for (const port of service.spec.ports) {
            expect(ports.map((p) => p.name)).toContain(port.targetPort);
            expect(ports.find((p) => p.name === port.targetPort)?.containerPort).toBe(port.port);
          }
        }
      },
    );

    it("chart - every bridge, XMPP included, serves its status listener on every address to HTTP probes", async () => {
      const values = await everyBridge();
      const rendered = await render({ values });
      const bridges = (await renderedConfig(values, helm))["bridges"] as Record<string, { status?: unknown }>;
      const needs = await chartBridges();
      for (const name of bridgeNetworks) {
        // The schema's default port (schemas/common.schema.json), on the pod's address for the kubelet.
        expect(needs[name].status.defaultPort).toBe(9464);
        expect(bridges[name]?.status, name).toEqual({ host: "0.0.0.0" });
        const [container] = (find(rendered, "Deployment", `fedgate-bridge-${name}`) as Deployment).spec
          .template.spec.containers;
        expect(container?.ports, name).toContainEqual({
          name: "status",
          containerPort: 9464,
          protocol: "TCP",
        });
        expect(container?.startupProbe, name).toMatchObject({
          httpGet: { path: "/healthz", port: "status" },
        });
        expect(container?.livenessProbe, name).toMatchObject({
          httpGet: { path: "/healthz", port: "status" },
        });
        expect(container?.readinessProbe, name).toMatchObject({
          httpGet: { path: "/readyz", port: "status" },
        });
      }

      // A port of the values' own is the one the container and probes name; its host stays the chart's.
      const config = values.config["bridges"] as Record<string, Record<string, unknown>>;
      const moved = await render({
        values: {
          ...values,
          config: {
            ...values.config,
            bridges: { ...config, xmpp: { ...config["xmpp"], status: { port: 9465 } } },
          },
        },
      });
      const [xmpp] = (find(moved, "Deployment", "fedgate-bridge-xmpp") as Deployment).spec.template.spec
        .containers;
      expect(xmpp?.ports).toEqual([{ name: "status", containerPort: 9465, protocol: "TCP" }]);
    });

    it("chart - a bridge's status listener on loopback, on port 0 or on its network's port fails the install", async () => {
      const values = await everyBridge();
      const config = values.config["bridges"] as Record<string, Record<string, unknown>>;
      const withStatus = (name: BridgeNetwork, section: Record<string, unknown>): Values => ({
        ...values,
        config: { ...values.config, bridges: { ...config, [name]: { ...config[name], ...section } } },
      });
      await expect(render({ values: withStatus("xmpp", { status: { host: "127.0.0.1" } }) })).rejects.toThrow(
        /config\.bridges\.xmpp\.status\.host: 127\.0\.0\.1/,
      );
      await expect(render({ values: withStatus("matrix", { status: { port: 0 } }) })).rejects.toThrow(
        /config\.bridges\.matrix\.status\.port: 0/,
      );
      await expect(render({ values: withStatus("stashcat", { status: { port: 9100 } }) })).rejects.toThrow(
        /config\.bridges\.stashcat\.status\.port: 9100 is also its listen\.port/,
      );
    });

    it("chart - a disabled Matrix bridge gets no Service, registration mount or port", async () => {
      const defaults = await render();
      expect(named(defaults, "Service")).toEqual(["fedgate"]);
      expect(named(defaults, "Deployment")).toEqual(["fedgate-gateway"]);
      expect(defaults.notes).not.toContain("Matrix");
      // config.yaml is a string in the ConfigMap: parsed, it has no bridges section.
      const configMap = parse(defaults.files.get("fedgate/templates/configmap.yaml") ?? "") as {
        data: Record<string, string>;
      };
      expect(parse(configMap.data["config.yaml"] ?? "")).toHaveProperty("nats");
      expect(parse(configMap.data["config.yaml"] ?? "")).not.toHaveProperty("bridges");

      // A bridge that serves no HTTP to other pods, alone: its Deployment, without a Service or volume; its
      // only port is its status listener's.
      const values = await readValues(valuesFiles["helm.yaml"]);
      const bridges = values["bridges"] as Record<string, Record<string, unknown>>;
      const xmppOnly = await render({
        values: {
          ...values,
          bridges: {
            ...bridges,
            matrix: { enabled: false },
            stashcat: { enabled: false },
          },
        },
      });
      expect(named(xmppOnly, "Service")).toEqual(["fedgate"]);
      const xmpp = find(xmppOnly, "Deployment", "fedgate-bridge-xmpp") as Deployment;
      // The config, and NATS's login that helm.yaml takes from a Secret.
      expect(xmpp.spec.template.spec.volumes.map((v) => v.name)).toEqual(["config", "nats-login"]);
      const [container] = xmpp.spec.template.spec.containers;
      expect(container?.volumeMounts?.map((m) => m.mountPath)).toEqual([
        "/etc/fedgate",
        "/etc/fedgate-nats/login",
      ]);
      expect(container?.ports?.map((p) => p.name)).toEqual(["status"]);
    });

    it("chart - the Matrix bridge gets a ClusterIP Service, its registration Secret and a status port", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      const rendered = await render({ values, namespace: "fedgate" });
      const config = await renderedConfig(values, helm);
      const section = (config["bridges"] as { matrix: Record<string, unknown> }).matrix;

      const service = find(rendered, "Service", "fedgate-bridge-matrix") as Service;
      expect(service.spec.type).toBe("ClusterIP");
      expect(service.spec.ports).toEqual([
        expect.objectContaining({
          name: "appservice",
          port: 9000,
          targetPort: "appservice",
          protocol: "TCP",
        }),
      ]);
      expect(service.spec.selector).toMatchObject({ "app.kubernetes.io/component": "bridge-matrix" });
      // The other bridges reach the bridge through that Service.
      expect(section["publicUrl"]).toBe(
        `http://${service.metadata.name}:${String(service.spec.ports[0]?.port)}`,
      );
      expect(rendered.notes).toContain("http://fedgate-bridge-matrix.fedgate.svc:9000");

      const deployment = find(rendered, "Deployment", "fedgate-bridge-matrix") as Deployment;
      const pod = deployment.spec.template.spec;
      expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
      const volume = pod.volumes.find((v) => v.name === "matrix-registration-secret");
      expect(volume).toEqual({
        name: "matrix-registration-secret",
        secret: {
          secretName: "fedgate-matrix-registration",
          items: [{ key: "registration.yaml", path: "registration.yaml" }],
        },
      });
      const [container] = pod.containers;
      const mount = container?.volumeMounts?.find((m) => m.name === "matrix-registration-secret");
      expect(mount).toEqual({
        name: "matrix-registration-secret",
        mountPath: "/etc/fedgate-matrix",
        readOnly: true,
      });
      // The file the bridge reads is the Secret's item, outside the ConfigMap's mount.
      expect(section["registrationFile"]).toBe("/etc/fedgate-matrix/registration.yaml");
      // helm.yaml names no listener: the chart's, on every address at the schema's default port.
      expect(section["listen"]).toEqual({ host: "0.0.0.0" });

      expect(container?.ports).toEqual([
        { name: "appservice", containerPort: 9000, protocol: "TCP" },
        { name: "status", containerPort: 9464, protocol: "TCP" },
      ]);
      // The probes ask the status listener, not the homeserver's port.
      for (const probe of [container?.startupProbe, container?.livenessProbe, container?.readinessProbe])
        expect(probe).toMatchObject({ httpGet: { port: "status" } });

      // Only the Matrix bridge's pod sees the registration's tokens.
      const gateway = find(rendered, "Deployment", "fedgate-gateway") as Deployment;
      expect(gateway.spec.template.spec.volumes.map((v) => v.name)).not.toContain(
        "matrix-registration-secret",
      );
    });

    it("chart - the chart fills in the Matrix listener and registration file, and the Service follows the port", async () => {
      const values = await withMatrix(
        { enabled: true, registrationSecret: { name: "matrix-as", key: "as.yaml" } },
        { ...tchap, listen: { port: 9100 } },
      );
      const rendered = await render({ values });
      const section = ((await renderedConfig(values, helm))["bridges"] as { matrix: Record<string, unknown> })
        .matrix;
      expect(section).toMatchObject({
        listen: { host: "0.0.0.0", port: 9100 },
        registrationFile: "/etc/fedgate-matrix/registration.yaml",
      });
      expect((find(rendered, "Service", "fedgate-bridge-matrix") as Service).spec.ports[0]?.port).toBe(9100);
      const pod = (find(rendered, "Deployment", "fedgate-bridge-matrix") as Deployment).spec.template.spec;
      expect(pod.containers[0]?.ports?.[0]?.containerPort).toBe(9100);
      expect(pod.volumes).toContainEqual(
        expect.objectContaining({
          secret: { secretName: "matrix-as", items: [{ key: "as.yaml", path: "registration.yaml" }] },
        }),
      );

      // A registration mounted some other way: the chart mounts nothing and keeps the file the values name.
      const own = await withMatrix({ enabled: true }, { ...tchap, registrationFile: "/var/run/as/reg.yaml" });
      const ownPod = (
        find(await render({ values: own }), "Deployment", "fedgate-bridge-matrix") as Deployment
      ).spec.template.spec;
      expect(ownPod.volumes.map((v) => v.name)).toEqual(["config", "nats-login"]);
      expect(((await renderedConfig(own, helm))["bridges"] as { matrix: unknown }).matrix).toMatchObject({
        registrationFile: "/var/run/as/reg.yaml",
        listen: { host: "0.0.0.0" },
      });
    });

    it("chart - helm.yaml keeps the Matrix bridge's encryption store on a claim and its key in a Secret, both mounted where the config points", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      const rendered = await render({ values });
      const encryption = (
        (await renderedConfig(values, helm))["bridges"] as { matrix: { encryption: Record<string, unknown> } }
      ).matrix.encryption;
      expect(encryption).toEqual({
        enabled: true,
        storeFile: "/var/lib/fedgate-matrix/crypto-store",
        storeKeyFile: "/etc/fedgate-matrix-store/store.key",
      });
      const claim = find(rendered, "PersistentVolumeClaim", "fedgate-bridge-matrix-store");
      // Deleting the release keeps the bridge's devices.
      expect(claim.metadata).toMatchObject({ annotations: { "helm.sh/resource-policy": "keep" } });
      expect(claim["spec"]).toEqual({
        accessModes: ["ReadWriteOnce"],
        resources: { requests: { storage: "1Gi" } },
      });
      const pod = (find(rendered, "Deployment", "fedgate-bridge-matrix") as Deployment).spec.template.spec;
      expect(pod.volumes).toEqual(
        expect.arrayContaining([
          {
            name: "matrix-store-key",
            secret: { secretName: "fedgate-matrix-store", items: [{ key: "store.key", path: "store.key" }] },
          },
          { name: "matrix-store", persistentVolumeClaim: { claimName: "fedgate-bridge-matrix-store" } },
        ]),
      );
      const mounts = pod.containers[0]?.volumeMounts ?? [];
      expect(mounts).toEqual(
        expect.arrayContaining([
          { name: "matrix-store-key", mountPath: "/etc/fedgate-matrix-store", readOnly: true },
          { name: "matrix-store", mountPath: "/var/lib/fedgate-matrix" },
        ]),
      );
      // The files the config names are the mounted ones: the key in the Secret's folder, the store on the claim.
      expect(mounts.find((m) => m.mountPath === dirname(String(encryption["storeKeyFile"])))?.name).toBe(
        "matrix-store-key",
      );
      expect(mounts.find((m) => m.mountPath === dirname(String(encryption["storeFile"])))?.name).toBe(
        "matrix-store",
      );
      // The pod's group owns the claim's files, so its non-root user can write the store.
      expect((pod as PodSpec & { securityContext?: { fsGroup?: number } }).securityContext?.fsGroup).toBe(
        1000,
      );
      // Only the Matrix bridge's pod sees the store or its key.
      for (const other of ["fedgate-gateway", "fedgate-bridge-xmpp", "fedgate-bridge-stashcat"])
        expect(
          (find(rendered, "Deployment", other) as Deployment).spec.template.spec.volumes.map((v) => v.name),
        ).not.toEqual(expect.arrayContaining([expect.stringMatching(/store/)]));
    });

    it("chart - the Matrix bridge's store follows the values: an existing claim, the config's own files, or none without encryption", async () => {
      const registration = { name: "matrix-as" };
      const existing = await withMatrix(
        {
          enabled: true,
          registrationSecret: registration,
          encryptionStore: {
            keySecret: { name: "keys", key: "k" },
            persistence: { existingClaim: "tchap-keys" },
          },
        },
        { ...tchap, encryption: { enabled: true } },
      );
      const rendered = await render({ values: existing });
      expect(named(rendered, "PersistentVolumeClaim")).toEqual([]);
      const pod = (find(rendered, "Deployment", "fedgate-bridge-matrix") as Deployment).spec.template.spec;
      expect(pod.volumes).toEqual(
        expect.arrayContaining([
          { name: "matrix-store", persistentVolumeClaim: { claimName: "tchap-keys" } },
          {
            name: "matrix-store-key",
            secret: { secretName: "keys", items: [{ key: "k", path: "store.key" }] },
          },
        ]),
      );

      // Files the config places itself (mounted with extraVolumes): the chart mounts and creates nothing.
      const own = await withMatrix(
        { enabled: true, registrationSecret: registration },
        {
          ...tchap,
          encryption: { enabled: true, storeFile: "/data/store", storeKeyFile: "/keys/store.key" },
        },
      );
      const ownRendered = await render({ values: own });
      expect(named(ownRendered, "PersistentVolumeClaim")).toEqual([]);
      expect(
        (
          find(ownRendered, "Deployment", "fedgate-bridge-matrix") as Deployment
        ).spec.template.spec.volumes.map((v) => v.name),
      ).toEqual(["config", "matrix-registration-secret", "nats-login"]);
      expect(
        ((await renderedConfig(own, helm))["bridges"] as { matrix: { encryption: unknown } }).matrix
          .encryption,
      ).toEqual({ enabled: true, storeFile: "/data/store", storeKeyFile: "/keys/store.key" });

      // Encryption off: a key Secret named in the values mounts nothing, and no claim is made.
      const off = await withMatrix(
        { enabled: true, registrationSecret: registration, encryptionStore: { keySecret: { name: "keys" } } },
        tchap,
      );
      const offRendered = await render({ values: off });
      expect(named(offRendered, "PersistentVolumeClaim")).toEqual([]);
      expect(
        (
          find(offRendered, "Deployment", "fedgate-bridge-matrix") as Deployment
        ).spec.template.spec.volumes.map((v) => v.name),
      ).toEqual(["config", "matrix-registration-secret", "nats-login"]);
      expect(
        ((await renderedConfig(off, helm))["bridges"] as { matrix: Record<string, unknown> }).matrix,
      ).not.toHaveProperty("encryption");
    });

    it("chart - an encrypting Matrix bridge without its store's key fails the install, naming the value", async () => {
      const values = await withMatrix(
        { enabled: true, registrationSecret: { name: "matrix-as" } },
        { ...tchap, encryption: { enabled: true } },
      );
      await expect(render({ values })).rejects.toThrow(/bridges\.matrix\.encryptionStore\.keySecret\.name/);
    });

    it("chart - a Matrix bridge without a registration, or listening on loopback, fails the install", async () => {
      await expect(render({ values: await withMatrix({ enabled: true }, tchap) })).rejects.toThrow(
        /bridges\.matrix\.registrationSecret\.name/,
      );
      const loopback = await withMatrix(
        { enabled: true, registrationSecret: { name: "matrix-as" } },
        { ...tchap, listen: { host: "127.0.0.1" } },
      );
      await expect(render({ values: loopback })).rejects.toThrow(/listen\.host: 127\.0\.0\.1/);
    });

    it("chart - long release names give valid Service names that keep the bridges apart", async () => {
      // Helm's longest release name (53 characters); fullname adds "-fedgate", a bridge's suffix more.
      const release = "a-long-release-name-for-the-federation-gateway-agency";
      const rendered = await render({ release, values: await readValues(valuesFiles["helm.yaml"]) });
      const deployments = named(rendered, "Deployment");
      // Service names are DNS labels (63 characters at most); Deployment names may be longer.
      for (const name of named(rendered, "Service")) expect(name.length).toBeLessThanOrEqual(63);
      const matrix = deployments.find((n) => n.endsWith("-bridge-matrix"));
      expect(deployments.find((n) => n.endsWith("-bridge-xmpp"))).toBeDefined();
      const stashcat = deployments.find((n) => n.endsWith("-bridge-stashcat"));
      expect(named(rendered, "Service")).toEqual(expect.arrayContaining([matrix, stashcat]));
      expect(rendered.notes).toContain(`http://${matrix ?? ""}.default.svc:9000`);
      expect(rendered.notes).toContain(`http://${stashcat ?? ""}.default.svc:9100`);
    });

    it("chart - helm.yaml bridges every network its links name, and under any release name its bridges' URLs name its own Services", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      const linked = new Set(
        (values.config["links"] as { endpoints: { network: string }[] }[]).flatMap((link) =>
          link.endpoints.map((endpoint) => endpoint.network),
        ),
      );
      const release = "agency-prod";
      const rendered = await render({ release, values });
      for (const network of linked)
        expect(named(rendered, "Deployment")).toContain(`${release}-fedgate-bridge-${network}`);
      const configMap = find(rendered, "ConfigMap", `${release}-fedgate-config`);
      const config = parse((configMap["data"] as Record<string, string>)["config.yaml"] ?? "") as {
        bridges: Record<string, { publicUrl?: string; attachments?: { hosts?: string[] } }>;
      };
      const services = named(rendered, "Service");
      for (const bridge of Object.values(config.bridges)) {
        if (bridge.publicUrl !== undefined) expect(services).toContain(new URL(bridge.publicUrl).hostname);
        for (const host of bridge.attachments?.hosts ?? [])
          if (host.includes("fedgate"))
            expect(services).toContain(host.includes("://") ? new URL(host).hostname : host.split(":")[0]);
      }
    });

    it("chart - a policy edit rolls no pod (the core reloads it live); a bridge's own settings roll that bridge and the core", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      const checksums = async (changed: Values): Promise<Record<string, string>> =>
        Object.fromEntries(
          ((await render({ values: changed })).manifests as unknown as Deployment[])
            .filter((d) => d.kind === "Deployment")
            .map((d) => [d.metadata.name, d.spec.template.metadata.annotations?.["checksum/config"] ?? ""]),
        );
      const before = await checksums(values);
      const policy = values.policy as { routes: { from: string; to: string }[] };
      const policyEdited = await checksums({
        ...values,
        policy: { ...policy, routes: [...policy.routes, { from: "polizei-ni", to: "bpol" }] },
      });
      const matrixEdited = await checksums(
        await withMatrix((values["bridges"] as Record<string, Record<string, unknown>>)["matrix"] ?? {}, {
          ...((values.config["bridges"] as Record<string, object>)["matrix"] ?? {}),
          serverName: "tchap.gouv.example",
        }),
      );
      const changed = (after: Record<string, string>): string[] =>
        Object.keys(before)
          .filter((name) => before[name] !== after[name])
          .sort();
      expect(Object.keys(before).sort()).toEqual([
        "fedgate-bridge-matrix",
        "fedgate-bridge-stashcat",
        "fedgate-bridge-xmpp",
        "fedgate-gateway",
      ]);
      expect(changed(policyEdited)).toEqual([]);
      // Unless the core is told not to watch it.
      const unwatched = { ...values, config: { ...values.config, gateway: { watchPolicyFile: false } } };
      const unwatchedBefore = await checksums(unwatched);
      const unwatchedEdited = await checksums({ ...unwatched, policy: { ...policy, routes: [] } });
      expect(
        Object.keys(unwatchedBefore).filter((name) => unwatchedBefore[name] !== unwatchedEdited[name]),
      ).toEqual(["fedgate-gateway"]);
      expect(changed(matrixEdited)).toEqual(["fedgate-bridge-matrix", "fedgate-gateway"]);
      // The notes tell the operator which, and where a refused policy shows.
      expect((await render({ values })).notes).toContain("policy reload failed; keeping the");
      expect((await render({ values: unwatched })).notes).toContain("rolls the core's pods");
    });

    it("chart - image digest, pull secrets, pod annotations and labels, and spread constraints reach every pod", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      const digest = `sha256:${"ab".repeat(32)}`;
      const spread = [
        {
          maxSkew: 1,
          topologyKey: "topology.kubernetes.io/zone",
          whenUnsatisfiable: "ScheduleAnyway",
          labelSelector: { matchLabels: { "app.kubernetes.io/name": "fedgate" } },
        },
      ];
      const knobs: Values = {
        ...values,
        image: { ...(values["image"] as object), digest },
        imagePullSecrets: [{ name: "registry-credentials" }],
        podAnnotations: { "example.org/team": "platform" },
        podLabels: { "example.org/cost-centre": "bpol-42" },
        topologySpreadConstraints: spread,
      };
      expect((await valuesValidator())(knobs)).toEqual([]);
      const deployments = ((await render({ values: knobs })).manifests as unknown as Deployment[]).filter(
        (d) => d.kind === "Deployment",
      );
      expect(deployments).toHaveLength(4);
      for (const deployment of deployments) {
        const { metadata, spec } = deployment.spec.template;
        const pod = spec as PodSpec & {
          imagePullSecrets?: unknown;
          topologySpreadConstraints?: unknown;
        };
        expect(pod.containers[0]?.image).toBe(`ghcr.io/fedgate/fedgate@${digest}`);
        expect(pod.imagePullSecrets).toEqual([{ name: "registry-credentials" }]);
        expect(pod.topologySpreadConstraints).toEqual(spread);
        expect(metadata.annotations).toMatchObject({ "example.org/team": "platform" });
        expect(metadata.labels).toMatchObject({ "example.org/cost-centre": "bpol-42" });
        // The Deployment selects on its own labels only: pod labels added later must not orphan its pods.
        expect(deployment.spec.selector.matchLabels).not.toHaveProperty("example.org/cost-centre");
      }
    });

    it("chart - helm test checks the config as fedgate reads it, then the core's /readyz through its Service", async () => {
      const rendered = await render({
        release: "agency-prod",
        values: await readValues(valuesFiles["helm.yaml"]),
      });
      const pod = find(rendered, "Pod", "agency-prod-fedgate-test") as Manifest & {
        metadata: { annotations: Record<string, string> };
        spec: PodSpec & { restartPolicy: string; initContainers: (Container & { args: string[] })[] };
      };
      expect(pod.metadata.annotations["helm.sh/hook"]).toBe("test");
      expect(pod.spec.restartPolicy).toBe("Never");
      expect(pod.spec.initContainers[0]?.args).toEqual([
        "config",
        "check",
        "--config",
        "/etc/fedgate/config.yaml",
      ]);
      const [ready] = pod.spec.containers as (Container & { args: string[] })[];
      expect(ready?.args.at(-1)).toBe("http://agency-prod-fedgate:8480/readyz");
      expect(named(rendered, "Service")).toContain("agency-prod-fedgate");
      // The same restricted security context as every other fedgate container.
      expect(ready).toMatchObject({
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true },
      });
      expect(pod.spec).toMatchObject({ securityContext: { runAsNonRoot: true } });
    });

    it("chart - an optional ServiceMonitor scrapes the core's /metrics through its Service", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      expect(named(await render({ values }), "ServiceMonitor")).toEqual([]);
      const monitored = { ...values, serviceMonitor: { enabled: true, labels: { release: "prometheus" } } };
      expect((await valuesValidator())(monitored)).toEqual([]);
      const rendered = await render({ values: monitored });
      const monitor = find(rendered, "ServiceMonitor", "fedgate") as Manifest & {
        metadata: { labels: Record<string, string> };
        spec: { selector: { matchLabels: Record<string, string> }; endpoints: Record<string, unknown>[] };
      };
      expect(monitor.metadata.labels).toMatchObject({ release: "prometheus" });
      expect(monitor.spec.endpoints).toEqual([{ port: "admin", path: "/metrics", interval: "30s" }]);
      // It selects the core's Service, whose port it names.
      const service = find(rendered, "Service", "fedgate") as Service & {
        metadata: { labels: Record<string, string> };
      };
      expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
      expect(service.spec.ports.map((p) => p.name)).toContain("admin");
      for (const other of named(rendered, "Service").filter((n) => n !== "fedgate")) {
        const labels = (
          find(rendered, "Service", other) as Service & { metadata: { labels: Record<string, string> } }
        ).metadata.labels;
        expect(labels).not.toMatchObject(monitor.spec.selector.matchLabels);
      }
    });

    it("chart - with the ServiceMonitor, a PodMonitor scrapes every enabled bridge's /metrics on its status port", async () => {
      const values = await everyBridge();
      expect(named(await render({ values }), "PodMonitor")).toEqual([]);
      const monitored = { ...values, serviceMonitor: { enabled: true, labels: { release: "prometheus" } } };
      const rendered = await render({ values: monitored });
      const monitor = find(rendered, "PodMonitor", "fedgate-bridges") as Manifest & {
        metadata: { labels: Record<string, string> };
        spec: {
          selector: {
            matchLabels: Record<string, string>;
            matchExpressions: { key: string; operator: string; values: string[] }[];
          };
          podMetricsEndpoints: Record<string, unknown>[];
        };
      };
      expect(monitor.metadata.labels).toMatchObject({ release: "prometheus" });
      expect(monitor.spec.podMetricsEndpoints).toEqual([
        { port: "status", path: "/metrics", interval: "30s" },
      ]);
      // It selects exactly the bridges' pods, each of which names the port.
      const selects = (labels: Record<string, string>): boolean =>
        Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => labels[k] === v) &&
        monitor.spec.selector.matchExpressions.every(
          (e) => e.operator === "In" && e.values.includes(labels[e.key] ?? ""),
        );
      for (const d of (rendered.manifests as unknown as Manifest[]).filter(
        (m): m is Deployment => m.kind === "Deployment",
      )) {
        const pod = d.spec.template;
        expect(selects(pod.metadata.labels), d.metadata.name).toBe(d.metadata.name !== "fedgate-gateway");
        if (d.metadata.name !== "fedgate-gateway")
          expect(pod.spec.containers[0]?.ports?.map((p) => p.name)).toContain("status");
      }
      // No bridge enabled: no PodMonitor.
      const defaults = await readValues(valuesFiles["charts/fedgate/values.yaml"]);
      const coreOnly = await render({ values: { ...defaults, serviceMonitor: { enabled: true } } });
      expect(named(coreOnly, "ServiceMonitor")).toEqual(["fedgate"]);
      expect(named(coreOnly, "PodMonitor")).toEqual([]);
    });

    it("chart - NATS's CA, client certificate and login come from existing Secrets into every pod, and the config names their files", async () => {
      const helmYaml = await everyBridge();
      // helm.yaml logs in with user and password; these values with the Secret's login instead.
      const {
        user: _user,
        password: _password,
        ...nats
      } = helmYaml.config["nats"] as Record<string, unknown>;
      const base: Values = { ...helmYaml, config: { ...helmYaml.config, nats } };
      const values: Values = {
        ...base,
        nats: {
          tlsSecret: { name: "nats-client-tls" },
          credentialsSecret: { name: "nats-login", nkeySeedKey: "fedgate.nk" },
        },
      };
      expect((await valuesValidator())(values)).toEqual([]);
      const rendered = await render({ values });
      const config = await renderedConfig(values, helm);
      expect(() => validateConfig(structuredClone(config))).not.toThrow();
      expect(config["nats"]).toMatchObject({
        tls: {
          caFile: "/etc/fedgate-nats/tls/ca.crt",
          certFile: "/etc/fedgate-nats/tls/tls.crt",
          keyFile: "/etc/fedgate-nats/tls/tls.key",
        },
        nkeySeed: { file: "/etc/fedgate-nats/login/fedgate.nk" },
      });
      const pods = (rendered.manifests as unknown as Manifest[])
        .filter((m): m is Deployment => m.kind === "Deployment")
        .map((d) => d.spec.template.spec);
      expect(pods).toHaveLength(4);
      for (const pod of pods) {
        expect(pod.volumes).toEqual(
          expect.arrayContaining([
            {
              name: "nats-tls",
              secret: {
                secretName: "nats-client-tls",
                items: [
                  { key: "ca.crt", path: "ca.crt" },
                  { key: "tls.crt", path: "tls.crt" },
                  { key: "tls.key", path: "tls.key" },
                ],
              },
            },
            {
              name: "nats-login",
              secret: { secretName: "nats-login", items: [{ key: "fedgate.nk", path: "fedgate.nk" }] },
            },
          ]),
        );
        expect(pod.containers[0]?.volumeMounts).toEqual(
          expect.arrayContaining([
            { name: "nats-tls", mountPath: "/etc/fedgate-nats/tls", readOnly: true },
            { name: "nats-login", mountPath: "/etc/fedgate-nats/login", readOnly: true },
          ]),
        );
      }

      // Only a CA (a server that verifies no clients), and a .creds file instead: the config says just that.
      const caOnly = await renderedConfig(
        {
          ...base,
          nats: {
            tlsSecret: { name: "nats-ca", certKey: "" },
            credentialsSecret: { name: "nats-login", credsKey: "fedgate.creds" },
          },
        },
        helm,
      );
      expect(caOnly["nats"]).toMatchObject({
        tls: { caFile: "/etc/fedgate-nats/tls/ca.crt" },
        credsFile: "/etc/fedgate-nats/login/fedgate.creds",
      });
      expect((caOnly["nats"] as { tls: object }).tls).not.toHaveProperty("certFile");

      // Two logins cannot both be meant.
      await expect(
        render({
          values: {
            ...base,
            nats: { credentialsSecret: { name: "nats-login", credsKey: "a.creds", nkeySeedKey: "a.nk" } },
          },
        }),
      ).rejects.toThrow(/nats\.credentialsSecret: one of .* not credsKey and nkeySeedKey/);
      await expect(
        render({
          values: {
            ...base,
            config: { ...base.config, nats: { ...nats, password: { env: "NATS_PASSWORD" } } },
            nats: { credentialsSecret: { name: "nats-login", credsKey: "a.creds" } },
          },
        }),
      ).rejects.toThrow(/config\.nats\.password/);

      // helm.yaml: user and password, the password from its Secret as a file; no pod gets a login in its env.
      const reference = await renderedConfig(helmYaml, helm);
      expect(reference["nats"]).toMatchObject({
        user: "fedgate",
        password: { file: "/etc/fedgate-nats/login/password" },
      });
      for (const deployment of (await render({ values: helmYaml })).manifests as unknown as Manifest[]) {
        if (deployment.kind !== "Deployment") continue;
        for (const container of (deployment as Deployment).spec.template.spec.containers)
          expect(JSON.stringify(container.env ?? [])).not.toMatch(/NATS_/);
      }
      await expect(
        render({
          values: {
            ...base,
            nats: { credentialsSecret: { name: "nats-login", passwordKey: "password" } },
          },
        }),
      ).rejects.toThrow(/passwordKey: set config\.nats\.user/);
    });

    it("chart - the admin Secret the chart creates rolls the core when its token changes; one of the team's is not read", async () => {
      const defaults = await readValues(valuesFiles["charts/fedgate/values.yaml"]);
      const rendered = await render({ values: defaults });
      const secret = find(rendered, "Secret", "fedgate-admin") as Manifest & { data: Record<string, string> };
      const token = secret.data["token"] ?? "";
      expect(token).not.toBe("");
      const annotations = (d: string): Record<string, string> =>
        (find(rendered, "Deployment", d) as Deployment).spec.template.metadata.annotations ?? {};
      expect(annotations("fedgate-gateway")["checksum/admin-secret"]).toBe(
        createHash("sha256").update(token).digest("hex"),
      );
      const own = await render({ values: await readValues(valuesFiles["helm.yaml"]) });
      expect(named(own, "Secret")).toEqual([]);
      for (const name of named(own, "Deployment"))
        expect(
          (find(own, "Deployment", name) as Deployment).spec.template.metadata.annotations,
        ).not.toHaveProperty("checksum/admin-secret");
    });

    it("chart - each component takes its own nodeSelector, affinity, tolerations, pod and Deployment annotations and extra volumes", async () => {
      const values = await everyBridge();
      const bridges = values["bridges"] as Record<string, Record<string, unknown>>;
      const dedicated = { "fedgate.example/pool": "bridges" };
      const tolerations = [{ key: "dedicated", operator: "Equal", value: "bridges", effect: "NoSchedule" }];
      const own: Values = {
        ...values,
        podAnnotations: { team: "platform", shared: "global" },
        deploymentAnnotations: { "reloader.stakater.com/auto": "true" },
        affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
        gateway: {
          deploymentAnnotations: { "example.org/owner": "core-team" },
          ...(values["gateway"] as object),
          podAnnotations: { shared: "gateway" },
          extraVolumes: [{ name: "partners", configMap: { name: "partner-keys" } }],
          extraVolumeMounts: [{ name: "partners", mountPath: "/etc/partners", readOnly: true }],
        },
        bridges: {
          ...bridges,
          matrix: { ...bridges["matrix"], nodeSelector: dedicated, tolerations, affinity: {} },
        },
      };
      expect((await valuesValidator())(own)).toEqual([]);
      const rendered = await render({ values: own });
      const pod = (name: string): Deployment["spec"]["template"] =>
        (find(rendered, "Deployment", name) as Deployment).spec.template;
      const gateway = pod("fedgate-gateway");
      expect(gateway.metadata.annotations).toMatchObject({ team: "platform", shared: "gateway" });
      expect(gateway.spec.volumes.map((v) => v.name)).toContain("partners");
      expect(gateway.spec.containers[0]?.volumeMounts?.map((m) => m.name)).toContain("partners");
      // The gateway's own affinity (helm.yaml's) replaces the global one; where a component sets none, it applies.
      expect(gateway.spec).toHaveProperty("affinity.podAntiAffinity");
      expect(gateway.spec).not.toHaveProperty("affinity.nodeAffinity");
      expect(pod("fedgate-bridge-xmpp").spec).toHaveProperty("affinity.nodeAffinity");
      const matrix = pod("fedgate-bridge-matrix");
      expect(matrix.metadata.annotations).toMatchObject({ team: "platform", shared: "global" });
      expect(matrix.spec).toMatchObject({ nodeSelector: dedicated, tolerations });
      expect(matrix.spec).not.toHaveProperty("affinity");
      expect(matrix.spec.volumes.map((v) => v.name)).not.toContain("partners");
      expect(pod("fedgate-bridge-xmpp").spec).not.toHaveProperty("nodeSelector");
      // Annotations on the Deployments themselves, e.g. for a controller that restarts them when Secrets change.
      const meta = (name: string): Record<string, string> | undefined =>
        (
          find(rendered, "Deployment", name) as Manifest & {
            metadata: { annotations?: Record<string, string> };
          }
        ).metadata.annotations;
      expect(meta("fedgate-gateway")).toEqual({
        "reloader.stakater.com/auto": "true",
        "example.org/owner": "core-team",
      });
      expect(meta("fedgate-bridge-xmpp")).toEqual({ "reloader.stakater.com/auto": "true" });
      expect(await apiSchemaErrors(rendered.manifests as unknown as Manifest[])).toEqual([]);
    });

    describe("chart - NetworkPolicy", () => {
      interface Peer {
        podSelector?: { matchLabels?: Record<string, string> };
        namespaceSelector?: { matchLabels?: Record<string, string> };
        ipBlock?: { cidr: string; except?: string[] };
      }
      interface PortRule {
        port: number | string;
        protocol?: string;
      }
      interface Rule {
        ports?: PortRule[];
        to?: Peer[];
        from?: Peer[];
      }
      interface NetworkPolicy extends Manifest {
        spec: {
          podSelector: { matchLabels: Record<string, string> };
          policyTypes: string[];
          ingress?: Rule[];
          egress?: Rule[];
        };
      }
      const dns: Rule = {
        to: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
            podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
          },
        ],
        ports: [
          { port: 53, protocol: "UDP" },
          { port: 53, protocol: "TCP" },
        ],
      };
      const natsPeers = [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "nats" } } }];
      const nats: Rule = { to: natsPeers, ports: [{ port: 4222, protocol: "TCP" }] };
      const podOf = (name: string): Peer => ({
        podSelector: {
          matchLabels: {
            "app.kubernetes.io/name": "fedgate",
            "app.kubernetes.io/instance": "fedgate",
            "app.kubernetes.io/component": name,
          },
        },
      });

      it("chart - off by default; helm.yaml's are valid API objects, one per component, selecting its pods only", async () => {
        const defaults = await readValues(valuesFiles["charts/fedgate/values.yaml"]);
        expect(named(await render({ values: defaults }), "NetworkPolicy")).toEqual([]);
        const values = await everyBridge();
        expect((await valuesValidator())(values)).toEqual([]);
        const rendered = await render({ values });
        const policies = (rendered.manifests as unknown as Manifest[]).filter(
          (m): m is NetworkPolicy => m.kind === "NetworkPolicy",
        );
        expect(policies.map((p) => p.metadata.name).sort()).toEqual([
          "fedgate-bridge-matrix",
          "fedgate-bridge-stashcat",
          "fedgate-bridge-xmpp",
          "fedgate-gateway",
        ]);
        expect(await apiSchemaErrors(policies)).toEqual([]);
        const deployments = (rendered.manifests as unknown as Manifest[]).filter(
          (m): m is Deployment => m.kind === "Deployment",
        );
        for (const policy of policies) {
          expect(policy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
          const selected = deployments.filter((d) =>
            Object.entries(policy.spec.podSelector.matchLabels).every(
              ([k, v]) => d.spec.template.metadata.labels[k] === v,
            ),
          );
          expect(selected.map((d) => d.metadata.name)).toEqual([policy.metadata.name]);
        }
      });

      it("chart - the core: in on its admin port only; out to DNS, NATS and the OTLP collector only", async () => {
        const values = await everyBridge();
        const policy = find(await render({ values }), "NetworkPolicy", "fedgate-gateway") as NetworkPolicy;
        const monitoring = [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
        ];
        expect(policy.spec.ingress).toEqual([
          // The helm test pod checks /readyz through the Service.
          { ports: [{ port: "admin", protocol: "TCP" }], from: [...monitoring, podOf("test")] },
        ]);
        expect(policy.spec.egress).toEqual([
          dns,
          nats,
          {
            to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } } }],
            ports: [{ port: 4318, protocol: "TCP" }],
          },
        ]);
        // Without an OTLP endpoint, no way out to it; a port in config.nats.url is the one allowed.
        const telemetry = values.config["telemetry"] as Record<string, unknown>;
        const bare = await render({
          values: {
            ...values,
            config: {
              ...values.config,
              nats: { url: "nats://nats.nats.svc,tls://nats-1.nats.svc:4333", user: "fedgate" },
              telemetry: { ...telemetry, otlpEndpoint: undefined },
            },
          },
        });
        expect((find(bare, "NetworkPolicy", "fedgate-gateway") as NetworkPolicy).spec.egress).toEqual([
          dns,
          {
            to: natsPeers,
            ports: [
              { port: 4222, protocol: "TCP" },
              { port: 4333, protocol: "TCP" },
            ],
          },
        ]);
      });

      it("chart - a bridge: in on its status port, its HTTP port from the other bridges (Matrix: and the homeserver); out to its own server and the others' files", async () => {
        const values = await everyBridge();
        const rendered = await render({ values });
        const policy = (name: string): NetworkPolicy =>
          find(rendered, "NetworkPolicy", `fedgate-bridge-${name}`) as NetworkPolicy;
        const scrapers = [
          { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
        ];
        const status = { ports: [{ port: "status", protocol: "TCP" }], from: scrapers };
        const synapse = {
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "matrix" } },
          podSelector: { matchLabels: { "app.kubernetes.io/name": "synapse" } },
        };

        expect(policy("xmpp").spec.ingress).toEqual([status]);
        expect(policy("matrix").spec.ingress).toEqual([
          status,
          {
            ports: [{ port: "appservice", protocol: "TCP" }],
            from: [podOf("bridge-stashcat"), podOf("bridge-xmpp"), synapse],
          },
        ]);
        expect(policy("stashcat").spec.ingress).toEqual([
          status,
          {
            ports: [{ port: "files", protocol: "TCP" }],
            from: [podOf("bridge-matrix"), podOf("bridge-xmpp")],
          },
        ]);

        const otlp = {
          to: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "observability" } } }],
          ports: [{ port: 4318, protocol: "TCP" }],
        };
        const files = (name: string, port: number): Rule => ({
          to: [podOf(`bridge-${name}`)],
          ports: [{ port, protocol: "TCP" }],
        });
        const xmpp = policy("xmpp").spec.egress;
        expect(xmpp?.slice(0, 3)).toEqual([dns, nats, otlp]);
        const upload = { to: [{ ipBlock: { cidr: "192.0.2.11/32" } }], ports: [{ port: 443 }] };
        expect(xmpp?.slice(3)).toEqual([
          { to: [{ ipBlock: { cidr: "192.0.2.10/32" } }], ports: [{ port: 5347, protocol: "TCP" }] },
          files("matrix", 9000),
          files("stashcat", 9100),
          // helm.yaml's extraEgress, as given: the XMPP side's upload service.
          upload,
        ]);
        expect(policy("matrix").spec.egress?.slice(3)).toEqual([
          { to: [synapse], ports: [{ port: 8008, protocol: "TCP" }] },
          files("stashcat", 9100),
          upload,
        ]);
      });

      it("chart - an enabled bridge without its server's address fails the install, naming the key", async () => {
        const values = await everyBridge();
        const bridges = values["bridges"] as Record<string, Record<string, unknown>>;
        const { networkPolicy: _dropped, ...xmpp } = bridges["xmpp"] ?? {};
        await expect(render({ values: { ...values, bridges: { ...bridges, xmpp } } })).rejects.toThrow(
          /bridges\.xmpp\.networkPolicy\.server/,
        );
      });
    });

    it("chart - a federation member's values (docs/helm-federation-member.yaml) validate, and its keys reach the gateway's pods only", async () => {
      const base = await readValues(valuesFiles["helm.yaml"]);
      const member = await readValues(join(root, "docs/helm-federation-member.yaml"));
      const values: Values = {
        ...base,
        ...member,
        gateway: { ...(base["gateway"] as object), ...(member["gateway"] as object) },
        config: { ...base.config, ...member.config },
      };
      expect((await valuesValidator())(values)).toEqual([]);
      const rendered = await render({ values });
      expect((await renderedConfig(values, helm))["federation"]).toEqual(member.config["federation"]);
      const podOf = (name: string): PodSpec =>
        (find(rendered, "Deployment", name) as Deployment).spec.template.spec;
      const gateway = podOf("fedgate-gateway");
      expect(gateway.volumes).toContainEqual({
        name: "federation",
        secret: { secretName: "fedgate-federation" },
      });
      expect(gateway.containers[0]?.volumeMounts).toContainEqual({
        name: "federation",
        mountPath: "/etc/fedgate-federation",
        readOnly: true,
      });
      for (const bridge of named(rendered, "Deployment").filter((n) => n.startsWith("fedgate-bridge-")))
        expect(
          podOf(bridge).volumes.map((v) => v.name),
          bridge,
        ).not.toContain("federation");
    });

    it("chart - the Stashcat bridge gets a ClusterIP Service, its credentials as env and a status port", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      const rendered = await render({ values, namespace: "fedgate" });
      const section = (
        (await renderedConfig(values, helm))["bridges"] as { stashcat: Record<string, unknown> }
      ).stashcat;

      const service = find(rendered, "Service", "fedgate-bridge-stashcat") as Service;
      expect(service.spec.type).toBe("ClusterIP");
      expect(service.spec.ports).toEqual([
        expect.objectContaining({ name: "files", port: 9100, targetPort: "files", protocol: "TCP" }),
      ]);
      expect(service.spec.selector).toMatchObject({ "app.kubernetes.io/component": "bridge-stashcat" });
      // The other bridges fetch Stashcat files through that Service.
      expect(section["publicUrl"]).toBe(
        `http://${service.metadata.name}:${String(service.spec.ports[0]?.port)}`,
      );
      expect(section["listen"]).toEqual({ host: "0.0.0.0" });
      expect(rendered.notes).toContain("http://fedgate-bridge-stashcat.fedgate.svc:9100");

      const deployment = find(rendered, "Deployment", "fedgate-bridge-stashcat") as Deployment;
      expect(deployment.spec.template.metadata.labels).toMatchObject(service.spec.selector);
      const [container] = deployment.spec.template.spec.containers;
      expect(container?.env).toEqual(
        expect.arrayContaining([
          {
            name: stashcatCredentialEnv.password,
            valueFrom: { secretKeyRef: { name: "fedgate-stashcat", key: "password" } },
          },
          {
            name: stashcatCredentialEnv.encryptionPassword,
            valueFrom: { secretKeyRef: { name: "fedgate-stashcat", key: "encryptionPassword" } },
          },
        ]),
      );
      // extraEnv still reaches it (NATS_PASSWORD for config.nats.password).
      expect(container?.ports).toEqual([
        { name: "files", containerPort: 9100, protocol: "TCP" },
        { name: "status", containerPort: 9464, protocol: "TCP" },
      ]);
      for (const probe of [container?.startupProbe, container?.livenessProbe, container?.readinessProbe])
        expect(probe).toMatchObject({ httpGet: { port: "status" } });
      // No volume of its own (the passwords come as env, the session is kept in NATS): the config and NATS's login.
      expect(deployment.spec.template.spec.volumes.map((v) => v.name)).toEqual(["config", "nats-login"]);

      // The config's references resolve to the Secret's keys in the bridge's pod.
      const loaded = await stashcatInPod(values, helm);
      expect(loaded).toMatchObject({
        password: "fedgate-stashcat/password",
        encryptionPassword: "fedgate-stashcat/encryptionPassword",
      });

      // Only the Stashcat bridge's pod sees the service account's passwords.
      for (const name of ["fedgate-gateway", "fedgate-bridge-matrix"]) {
        const pod = (find(rendered, "Deployment", name) as Deployment).spec.template.spec;
        for (const c of pod.containers)
          expect(envNames(c)).not.toEqual(expect.arrayContaining([stashcatCredentialEnv.password]));
      }
    });

    it("chart - a disabled Stashcat bridge gets no Service, Deployment or credentials", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      const bridges = values["bridges"] as Record<string, Record<string, unknown>>;
      const off = {
        ...values,
        bridges: { ...bridges, stashcat: { ...bridges["stashcat"], enabled: false } },
      };
      const rendered = await render({ values: off });
      expect(named(rendered, "Service").sort()).toEqual(["fedgate", "fedgate-bridge-matrix"]);
      expect(named(rendered, "Deployment").sort()).toEqual([
        "fedgate-bridge-matrix",
        "fedgate-bridge-xmpp",
        "fedgate-gateway",
      ]);
      expect(rendered.notes).not.toContain("Stashcat");
      for (const d of (rendered.manifests as unknown as Manifest[]).filter(
        (m): m is Deployment => m.kind === "Deployment",
      ))
        for (const c of d.spec.template.spec.containers)
          expect(envNames(c).filter((n) => n.startsWith("STASHCAT_"))).toEqual([]);
      // Its config section is left as given: no listener or publicUrl filled in.
      const section = ((await renderedConfig(off, helm))["bridges"] as { stashcat: Record<string, unknown> })
        .stashcat;
      expect(section).toEqual((values.config["bridges"] as { stashcat: unknown }).stashcat);
    });

    it("chart - the chart fills in the Stashcat listener, publicUrl and secret references, and the Service follows the port", async () => {
      const values = await withStashcat(
        { enabled: true, credentialsSecret: { name: "sc", passwordKey: "pw", encryptionPasswordKey: "" } },
        { ...ni, listen: { port: 9200 } },
      );
      const section = (
        (await renderedConfig(values, helm))["bridges"] as { stashcat: Record<string, unknown> }
      ).stashcat;
      expect(section).toMatchObject({
        listen: { host: "0.0.0.0", port: 9200 },
        publicUrl: "http://fedgate-bridge-stashcat:9200",
        password: { env: stashcatCredentialEnv.password },
      });
      // No encryption password key: neither the env var nor the reference; the login password opens the key.
      expect(section).not.toHaveProperty("encryptionPassword");
      const rendered = await render({ values });
      expect((find(rendered, "Service", "fedgate-bridge-stashcat") as Service).spec.ports[0]?.port).toBe(
        9200,
      );
      const [container] = (find(rendered, "Deployment", "fedgate-bridge-stashcat") as Deployment).spec
        .template.spec.containers;
      expect(container?.ports?.[0]?.containerPort).toBe(9200);
      expect(envNames(container).filter((n) => n.startsWith("STASHCAT_"))).toEqual([
        stashcatCredentialEnv.password,
      ]);
      expect(await stashcatInPod(values, helm)).toMatchObject({
        password: "sc/pw",
        encryptionPassword: "sc/pw",
      });

      // References the values give win, and are not mixed with the chart's.
      const own = await withStashcat(
        { enabled: true, credentialsSecret: { name: "sc" } },
        { ...ni, password: { file: "/run/stashcat/password" }, publicUrl: "http://stashcat-files.example" },
      );
      expect(((await renderedConfig(own, helm))["bridges"] as { stashcat: unknown }).stashcat).toMatchObject({
        password: { file: "/run/stashcat/password" },
        encryptionPassword: { env: stashcatCredentialEnv.encryptionPassword },
        publicUrl: "http://stashcat-files.example",
      });

      // Passwords from extraEnv instead of a credentials Secret.
      const extra = await withStashcat({ enabled: true }, { ...ni, password: { env: "SC_PASSWORD" } });
      const withEnv = {
        ...extra,
        extraEnv: [
          ...((extra["extraEnv"] as object[] | undefined) ?? []),
          { name: "SC_PASSWORD", value: "from-extra-env" },
        ],
      };
      expect(await stashcatInPod(withEnv, helm)).toMatchObject({ password: "from-extra-env" });
      const pod = (
        find(await render({ values: withEnv }), "Deployment", "fedgate-bridge-stashcat") as Deployment
      ).spec.template.spec;
      expect(envNames(pod.containers[0]).filter((n) => n.startsWith("STASHCAT_"))).toEqual([]);
    });

    it("chart - a Stashcat bridge without a password, with an env var its pod lacks, or unreachable, fails the install", async () => {
      await expect(render({ values: await withStashcat({ enabled: true }, ni) })).rejects.toThrow(
        /bridges\.stashcat\.credentialsSecret\.name/,
      );
      const missing = await withStashcat(
        { enabled: true, credentialsSecret: { name: "sc", encryptionPasswordKey: "" } },
        { ...ni, encryptionPassword: { env: stashcatCredentialEnv.encryptionPassword } },
      );
      await expect(render({ values: missing })).rejects.toThrow(
        /config\.bridges\.stashcat\.encryptionPassword: the bridge's container has no STASHCAT_ENCRYPTION_PASSWORD/,
      );
      const unset = await withStashcat({ enabled: true }, { ...ni, password: { env: "SC_PASSWORD" } });
      await expect(render({ values: unset })).rejects.toThrow(
        /config\.bridges\.stashcat\.password: the bridge's container has no SC_PASSWORD/,
      );
      const secret = { enabled: true, credentialsSecret: { name: "sc" } };
      const loopback = await withStashcat(secret, { ...ni, listen: { host: "localhost" } });
      await expect(render({ values: loopback })).rejects.toThrow(/listen\.host: localhost/);
      const anyPort = await withStashcat(secret, { ...ni, listen: { port: 0 } });
      await expect(render({ values: anyPort })).rejects.toThrow(/config\.bridges\.stashcat\.listen\.port: 0/);
    });

    it("chart - a disruption budget that would block drains fails the install", async () => {
      const values = await readValues(valuesFiles["helm.yaml"]);
      await expect(
        render({
          values: {
            ...values,
            gateway: { replicas: 2, podDisruptionBudget: { enabled: true, minAvailable: 2 } },
          },
        }),
      ).rejects.toThrow(/minAvailable \(2\) must be below gateway.replicas \(2\)/);
    });
  });
});
