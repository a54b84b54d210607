/**
 * Writes charts/fedgate/values.schema.json from schemas/, and charts/fedgate/bridges.yaml from each bridge's
 * deployment.json. Run `npm run generate` after changing either; a unit test fails when one is out of date.
 */
import { writeFile } from "node:fs/promises";
import { chartBridgesPath, chartSchemaPath, renderChartBridges, renderChartSchema } from "./chartSchema.js";

await writeFile(chartSchemaPath, await renderChartSchema());
console.log(`wrote ${chartSchemaPath}`);
await writeFile(chartBridgesPath, await renderChartBridges());
console.log(`wrote ${chartBridgesPath}`);
