/**
 * Derives schemas/types.ts from the JSON Schemas, so that no type is written twice.
 * `npm run gen:types` rewrites it; a unit test fails when it is out of date.
 */
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { renderSchemaTypes } from "./schemaTypes.js";

const out = fileURLToPath(new URL("../schemas/types.ts", import.meta.url));
await writeFile(out, await renderSchemaTypes());
console.log(`wrote ${out}`);
