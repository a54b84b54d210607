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
import { scratchDir } from "../../helpers/scratchDir.js";

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

/** What templates/_helpers.tpl (fedgate.configYaml) writes to config.yaml: each chart-owned section merged in. */
function renderedConfig(values: Values): Record<string, unknown> {
  const config: Record<string, unknown> = structuredClone(values.config);
  for (const [section, owned] of Object.entries(chartOwnedConfig)) {
    config[section] = { ...(config[section] as object | undefined), ...structuredClone(owned) };
  }
  return config;
}

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
      const config = renderedConfig(values);
      expect(() => validateConfig(structuredClone(config))).not.toThrow();

      // The ConfigMap as mounted at /etc/fedgate: the policy file is found next to the config, links name known agencies.
      const dir = await scratchDir("chart");
      await writeFile(join(dir, "config.yaml"), stringify(config));
      await writeFile(join(dir, "policy.yaml"), stringify(values.policy));
      const loaded = await loadConfig(join(dir, "config.yaml"), {});
      const policy = await loadPolicy(loaded);
      expect(() => checkDeclaredLinks(loaded.config, loaded.file, policy)).not.toThrow();
      expect(loaded.config.admin?.host).toBe("0.0.0.0");
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
