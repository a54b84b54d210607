import { readFile, readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { compile, type JSONSchema } from "json-schema-to-typescript";
import { format } from "prettier";
import { bridgeNetworks } from "../bridges/index.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const schemaDir = `${root}schemas/`;

/** A generated types file and the schemas it is made from. */
export interface TypesTarget {
  /** Path of the generated file, relative to the repository root. */
  out: string;
  /** Schema files, relative to the repository root. */
  schemas: string[];
  /** For a bridge: types it uses from schemas/types.ts are imported from there, not declared again. */
  importShared?: string;
  /**
   * Schemas (of those above) of config read only after validation: their types describe what the validator
   * returns, defaults filled in. A property with a default is always there, so code reads it without a
   * fallback of its own.
   */
  resolved?: string[];
}

/** Every generated types file: the contract's, and each bridge's own config. */
export async function typesTargets(): Promise<TypesTarget[]> {
  const contract = (await readdir(schemaDir)).filter((f) => f.endsWith(".schema.json")).sort();
  return [
    {
      out: "schemas/types.ts",
      schemas: contract.map((f) => `schemas/${f}`),
      resolved: ["schemas/config.schema.json"],
    },
    ...bridgeNetworks.map((bridge) => ({
      out: `bridges/${bridge}/config.types.ts`,
      schemas: [`bridges/${bridge}/config.schema.json`],
      importShared: "../../schemas/types.js",
      resolved: [`bridges/${bridge}/config.schema.json`],
    })),
  ];
}

/** The schema with every property that has a default listed as required, at every depth. */
function withDefaultsRequired(schema: JSONSchema): JSONSchema {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (typeof node !== "object" || node === null) return node;
    const copy = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, walk(value)]));
    const properties = copy["properties"] as Record<string, { default?: unknown }> | undefined;
    if (properties === undefined) return copy;
    const defaulted = Object.keys(properties).filter((key) => properties[key]?.default !== undefined);
    const required = (copy["required"] as string[] | undefined) ?? [];
    return { ...copy, required: [...new Set([...required, ...defaulted])] };
  };
  return walk(schema) as JSONSchema;
}

async function sharedNames(): Promise<Set<string>> {
  const shared = await readFile(`${schemaDir}types.ts`, "utf8");
  return new Set([...shared.matchAll(/^export (?:interface|type) (\w+)/gm)].map((m) => m[1] ?? ""));
}

/** Renders one target's TypeScript declarations, formatted as the repository formats code. */
export async function renderTypes(target: TypesTarget): Promise<string> {
  const seen = target.importShared === undefined ? new Set<string>() : await sharedNames();
  const imported = new Set<string>();
  const parts: string[] = [];
  for (const file of target.schemas) {
    const read = JSON.parse(await readFile(root + file, "utf8")) as JSONSchema;
    const schema = target.resolved?.includes(file) === true ? withDefaultsRequired(read) : read;
    // References such as "common.schema.json#/..." resolve against schemas/.
    const ts = await compile(schema, file, {
      cwd: schemaDir,
      bannerComment: "",
      additionalProperties: false,
      declareExternallyReferenced: true,
      unreachableDefinitions: true,
      format: false,
      maxItems: -1,
    });
    // Each file re-declares what it references; keep the first declaration of each name.
    for (const block of ts.split(/\n(?=export )/)) {
      const name = /^export (?:interface|type) (\w+)/.exec(block.trim())?.[1];
      if (name === undefined) continue;
      if (seen.has(name)) {
        if (
          target.importShared !== undefined &&
          !parts.some((p) => p.includes(`export interface ${name} `))
        ) {
          imported.add(name);
        }
        continue;
      }
      seen.add(name);
      parts.push(block.trim());
    }
  }
  const uses = [...imported].filter((name) => parts.some((p) => new RegExp(`\\b${name}\\b`).test(p))).sort();
  const sources = target.schemas.join(", ");
  const banner = `/* Generated from ${sources} by \`npm run generate\`. Do not edit: change the schema instead. */\n\n`;
  const imports =
    uses.length === 0 || target.importShared === undefined
      ? ""
      : `import type { ${uses.join(", ")} } from "${target.importShared}";\n\n`;
  return format(banner + imports + parts.join("\n\n") + "\n", { parser: "typescript", printWidth: 110 });
}
