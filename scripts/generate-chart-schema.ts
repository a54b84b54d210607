/**
 * Writes charts/fedgate/values.schema.json from schemas/. Run `npm run generate`
 * after changing a schema; a unit test fails when the file is out of date.
 */
import { writeFile } from "node:fs/promises";
import { chartSchemaPath, renderChartSchema } from "./chartSchema.js";

await writeFile(chartSchemaPath, await renderChartSchema());
console.log(`wrote ${chartSchemaPath}`);
