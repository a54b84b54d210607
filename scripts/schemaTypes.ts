import { readFile, readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { compile, type JSONSchema } from "json-schema-to-typescript";
import { format } from "prettier";

const schemaDir = fileURLToPath(new URL("../schemas/", import.meta.url));

/** Renders the TypeScript declarations for every schema in schemas/, formatted as the repository formats code. */
export async function renderSchemaTypes(): Promise<string> {
  const files = (await readdir(schemaDir)).filter((f) => f.endsWith(".schema.json")).sort();
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const file of files) {
    const schema = JSON.parse(await readFile(schemaDir + file, "utf8")) as JSONSchema;
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
      if (name === undefined || seen.has(name)) continue;
      seen.add(name);
      parts.push(block.trim());
    }
  }
  const banner =
    "/* Generated from schemas/*.schema.json by `npm run gen:types`. Do not edit: change the schema instead. */\n\n";
  return format(banner + parts.join("\n\n") + "\n", { parser: "typescript", printWidth: 110 });
}
