/**
 * Derives the TypeScript types from the JSON Schemas (schemas/types.ts, and each bridge's config types), so
 * that no type is written twice. `npm run generate` rewrites them; a unit test fails when one is out of date.
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { renderTypes, typesTargets } from "./schemaTypes.js";

for (const target of await typesTargets()) {
  const out = fileURLToPath(new URL(`../${target.out}`, import.meta.url));
  await writeFile(out, await renderTypes(target));
  console.log(`wrote ${out}`);
}
