/**
 * Reads a fedgate config file (YAML or JSON), validates it against schemas/config.schema.json and the
 * policy schema, and reports the first problem as a ConfigError naming the file, the key and the line.
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { isNode, LineCounter, parseDocument, type Document } from "yaml";
import type { Config, Policy } from "../../../schemas/types.js";
import { validateConfig } from "../../../schemas/contract/schemas.js";
import { ConfigError, type SchemaProblem } from "../../../schemas/contract/errors.js";

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the config file. */
  file: string;
}

/** Parses YAML text; a problem is reported with its line, its JSON pointer and the file. */
export function parseYaml(
  text: string,
  file: string,
): { value: unknown; locate: (pointer: string) => string } {
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: false });
  const error = doc.errors[0];
  if (error !== undefined) {
    const line = lineCounter.linePos(error.pos[0]).line;
    throw new ConfigError(file, "", `line ${line}: ${error.message.split("\n")[0] ?? "YAML syntax error"}`);
  }
  const locate = (pointer: string): string => {
    const path = pointer
      .split("/")
      .slice(1)
      .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
      .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    // Walk up to the nearest node that exists (a missing key is reported at its parent).
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range !== undefined && node.range !== null) {
        return ` (line ${lineCounter.linePos(node.range[0]).line})`;
      }
    }
    return "";
  };
  return { value: doc.toJS() as unknown, locate };
}

export function configErrorFor(
  file: string,
  problem: SchemaProblem,
  locate: (pointer: string) => string,
): ConfigError {
  return new ConfigError(file, problem.pointer, `${problem.message}${locate(problem.pointer)}`);
}

export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    throw new ConfigError(
      file,
      "",
      `cannot read file: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
      {
        code: "FG_CONFIG_UNREADABLE",
        cause,
      },
    );
  }
}

/** Loads and validates a config file. NATS_URL in the environment overrides nats.url. */
export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const file = resolve(path);
  const { value, locate } = parseYaml(await readText(file), file);
  const problem = validateConfig.problems(value)[0];
  if (problem !== undefined) throw configErrorFor(file, problem, locate);
  const config = value as Config;
  if (env["NATS_URL"] !== undefined && env["NATS_URL"] !== "") config.nats.url = env["NATS_URL"];
  return { config, file };
}

/** Where the gateway's policy comes from: inline in the config, or a file next to it. */
export function policySource(
  loaded: LoadedConfig,
): { policy: Policy; file: string } | { policyFile: string } {
  const gateway = loaded.config.gateway;
  if (gateway.policy !== undefined) return { policy: gateway.policy, file: loaded.file };
  if (gateway.policyFile !== undefined)
    return { policyFile: resolve(dirname(loaded.file), gateway.policyFile) };
  throw new ConfigError(loaded.file, "/gateway", "must have policyFile or policy");
}
