import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import {
  bridgeNames,
  chartOwnedConfig,
  chartSchemaPath,
  renderChartSchema,
} from "../../../scripts/chartSchema.js";
import { validateConfig } from "../../../gateway/contract/schemas.js";
import { loadConfig } from "../../../gateway/config/loadConfig.js";
import { checkDeclaredLinks, loadPolicy } from "../../../gateway/GatewayService.js";
import { matrixSection } from "../../../bridges/matrix/config.js";
import { scratchDir } from "../../helpers/scratchDir.js";
import { helmTemplate, type RenderedChart } from "./helmTemplate.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
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

/** What templates/_helpers.tpl (fedgate.configYaml) writes to config.yaml, as the ConfigMap holds it. */
async function renderedConfig(values: Values): Promise<Record<string, unknown>> {
  const configMap = find(await helmTemplate(chartDir, { values }), "ConfigMap", "fedgate-config");
  return parse((configMap["data"] as Record<string, string>)["config.yaml"] ?? "") as Record<string, unknown>;
}

interface Manifest {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Container {
  name: string;
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
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
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

/** helm.yaml with bridges.matrix and config.bridges.matrix replaced. */
async function withMatrix(
  bridge: Record<string, unknown>,
  section: Record<string, unknown>,
): Promise<Values> {
  const values = await readValues(valuesFiles["helm.yaml"]);
  const bridges = values["bridges"] as Record<string, unknown>;
  const config = values.config;
  return {
    ...values,
    bridges: { ...bridges, matrix: bridge },
    config: { ...config, bridges: { matrix: section } },
  };
}

const tchap = { instance: "tchap", homeserverUrl: "http://synapse:8008", serverName: "tchap.example" };

describe("chart - values and schema", () => {
  it("chart - values.schema.json is what the schemas generate (run npm run generate)", async () => {
    expect(await readFile(chartSchemaPath, "utf8")).toBe(await renderChartSchema());
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
    expect(validate({ ...base, gateway: { replicas: 0 } }).map((e) => e.instancePath)).toContain(
      "/gateway/replicas",
    );
    expect(
      validate({ ...base, gateway: { podDisruptionBudget: { enabled: true, minAvailable: "50%" } } }),
    ).toEqual([]);
  });
});

describe("chart - the config it renders", () => {
  it.each(Object.entries(valuesFiles))(
    "chart - %s renders a config that fedgate accepts",
    async (_name, file) => {
      const values = await readValues(file);
      const config = await renderedConfig(values);
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
      if ((values["bridges"] as { matrix: { enabled: boolean } }).matrix.enabled)
        expect(() => matrixSection(loaded)).not.toThrow();
    },
  );

  it("chart - the templates use the names the schema generator assumes", async () => {
    const helpers = await readFile(join(chartDir, "templates/_helpers.tpl"), "utf8");
    expect(helpers).toContain(`"policyFile" "${chartOwnedConfig.gateway.policyFile}"`);
    expect(helpers).toContain(`"host" "${chartOwnedConfig.admin.host}"`);
    expect(helpers).toContain(`(dict "env" "${chartOwnedConfig.admin.token.env}")`);
    const gateway = await readFile(join(chartDir, "templates/deployment-gateway.yaml"), "utf8");
    expect(gateway).toContain(`name: ${chartOwnedConfig.admin.token.env}`);
    const bridges = await readFile(join(chartDir, "templates/deployment-bridges.yaml"), "utf8");
    expect(bridges).toContain(`list ${bridgeNames.map((n) => `"${n}"`).join(" ")}`);
    const values = await readValues(valuesFiles["charts/fedgate/values.yaml"]);
    expect(Object.keys(values["bridges"] as object).sort()).toEqual([...bridgeNames].sort());
  });
});

describe("chart - the manifests it renders", () => {
  it.each(Object.entries(valuesFiles))(
    "chart - %s renders manifests whose references hold together",
    async (_name, file) => {
      const rendered = await helmTemplate(chartDir, { values: await readValues(file), namespace: "fedgate" });
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

  it("chart - a disabled Matrix bridge gets no Service, registration mount or port", async () => {
    const defaults = await helmTemplate(chartDir);
    expect(named(defaults, "Service")).toEqual(["fedgate"]);
    expect(named(defaults, "Deployment")).toEqual(["fedgate-gateway"]);
    expect(defaults.notes).not.toContain("Matrix");
    expect(parse(defaults.files.get("fedgate/templates/configmap.yaml") ?? "")).not.toHaveProperty(
      "data.config\\.yaml.bridges",
    );

    // Another bridge alone: its Deployment, without the Matrix bridge's Service, volume, port or probes.
    const values = await readValues(valuesFiles["helm.yaml"]);
    const bridges = values["bridges"] as Record<string, Record<string, unknown>>;
    const xmppOnly = await helmTemplate(chartDir, {
      values: { ...values, bridges: { ...bridges, matrix: { enabled: false }, xmpp: { enabled: true } } },
    });
    expect(named(xmppOnly, "Service")).toEqual(["fedgate"]);
    const xmpp = find(xmppOnly, "Deployment", "fedgate-bridge-xmpp") as Deployment;
    expect(xmpp.spec.template.spec.volumes.map((v) => v.name)).toEqual(["config"]);
    const [container] = xmpp.spec.template.spec.containers;
    expect(container?.volumeMounts?.map((m) => m.mountPath)).toEqual(["/etc/fedgate"]);
    expect(container).not.toHaveProperty("ports");
    expect(container).not.toHaveProperty("readinessProbe");
  });

  it("chart - the Matrix bridge gets a ClusterIP Service, its registration Secret and TCP probes", async () => {
    const values = await readValues(valuesFiles["helm.yaml"]);
    const rendered = await helmTemplate(chartDir, { values, namespace: "fedgate" });
    const config = await renderedConfig(values);
    const section = (config["bridges"] as { matrix: Record<string, unknown> }).matrix;

    const service = find(rendered, "Service", "fedgate-bridge-matrix") as Service;
    expect(service.spec.type).toBe("ClusterIP");
    expect(service.spec.ports).toEqual([
      expect.objectContaining({ name: "appservice", port: 9000, targetPort: "appservice", protocol: "TCP" }),
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
    const volume = pod.volumes.find((v) => v.name === "matrix-registration");
    expect(volume).toEqual({
      name: "matrix-registration",
      secret: {
        secretName: "fedgate-matrix-registration",
        items: [{ key: "registration.yaml", path: "registration.yaml" }],
      },
    });
    const [container] = pod.containers;
    const mount = container?.volumeMounts?.find((m) => m.name === "matrix-registration");
    expect(mount).toEqual({ name: "matrix-registration", mountPath: "/etc/fedgate-matrix", readOnly: true });
    // The file the bridge reads is the Secret's item, outside the ConfigMap's mount.
    expect(section["registrationFile"]).toBe("/etc/fedgate-matrix/registration.yaml");
    expect(section["listen"]).toEqual({ host: "0.0.0.0", port: 9000 });

    expect(container?.ports).toEqual([{ name: "appservice", containerPort: 9000, protocol: "TCP" }]);
    for (const probe of [container?.startupProbe, container?.livenessProbe, container?.readinessProbe])
      expect(probe).toMatchObject({ tcpSocket: { port: "appservice" } });

    // Only the Matrix bridge's pod sees the registration's tokens.
    const gateway = find(rendered, "Deployment", "fedgate-gateway") as Deployment;
    expect(gateway.spec.template.spec.volumes.map((v) => v.name)).not.toContain("matrix-registration");
  });

  it("chart - the chart fills in the Matrix listener and registration file, and the Service follows the port", async () => {
    const values = await withMatrix(
      { enabled: true, registrationSecret: { name: "matrix-as", key: "as.yaml" } },
      { ...tchap, listen: { port: 9100 } },
    );
    const rendered = await helmTemplate(chartDir, { values });
    const section = ((await renderedConfig(values))["bridges"] as { matrix: Record<string, unknown> }).matrix;
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
      find(await helmTemplate(chartDir, { values: own }), "Deployment", "fedgate-bridge-matrix") as Deployment
    ).spec.template.spec;
    expect(ownPod.volumes.map((v) => v.name)).toEqual(["config"]);
    expect(((await renderedConfig(own))["bridges"] as { matrix: unknown }).matrix).toMatchObject({
      registrationFile: "/var/run/as/reg.yaml",
      listen: { host: "0.0.0.0" },
    });
  });

  it("chart - a Matrix bridge without a registration, or listening on loopback, fails the install", async () => {
    await expect(
      helmTemplate(chartDir, { values: await withMatrix({ enabled: true }, tchap) }),
    ).rejects.toThrow(/bridges\.matrix\.registrationSecret\.name/);
    const loopback = await withMatrix(
      { enabled: true, registrationSecret: { name: "matrix-as" } },
      { ...tchap, listen: { host: "127.0.0.1" } },
    );
    await expect(helmTemplate(chartDir, { values: loopback })).rejects.toThrow(/listen\.host: 127\.0\.0\.1/);
  });

  it("chart - long release names give valid Service names that keep the bridges apart", async () => {
    const release = "a-very-long-release-name-for-the-federation-gateway-of-agencies";
    const values = await readValues(valuesFiles["helm.yaml"]);
    const bridges = values["bridges"] as Record<string, Record<string, unknown>>;
    const rendered = await helmTemplate(chartDir, {
      release,
      values: { ...values, bridges: { ...bridges, xmpp: { enabled: true } } },
    });
    const deployments = named(rendered, "Deployment");
    // Service names are DNS labels (63 characters at most); Deployment names may be longer.
    for (const name of named(rendered, "Service")) expect(name.length).toBeLessThanOrEqual(63);
    const matrix = deployments.find((n) => n.endsWith("-bridge-matrix"));
    expect(deployments.find((n) => n.endsWith("-bridge-xmpp"))).toBeDefined();
    expect(named(rendered, "Service")).toContain(matrix);
    expect(rendered.notes).toContain(`http://${matrix ?? ""}.default.svc:9000`);
  });

  it("chart - a disruption budget that would block drains fails the install", async () => {
    const values = await readValues(valuesFiles["helm.yaml"]);
    await expect(
      helmTemplate(chartDir, {
        values: {
          ...values,
          gateway: { replicas: 2, podDisruptionBudget: { enabled: true, minAvailable: 2 } },
        },
      }),
    ).rejects.toThrow(/minAvailable \(2\) must be below gateway.replicas \(2\)/);
  });
});
