import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { bridgeNetworks } from "../../../bridges/index.js";
import { validatorFor } from "../../../schemas/contract/schemas.js";

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  default?: unknown;
  examples?: unknown[];
}

/** Every property path with a default, however deep, as the generated (resolved) types require it. */
function defaultedPaths(node: SchemaNode, prefix: string[] = []): string[][] {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => [
    ...(child.default === undefined ? [] : [[...prefix, key]]),
    ...defaultedPaths(child, [...prefix, key]),
  ]);
}

function valueAt(value: unknown, path: string[]): unknown {
  return path.reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], value);
}

describe("bridge config - the defaults are the schema's, filled in by its validator", () => {
  for (const network of bridgeNetworks) {
    it(`${network} - a minimal section comes out with every defaulted key set`, () => {
      const file = `bridges/${network}/config.schema.json`;
      const schema = JSON.parse(readFileSync(file, "utf8")) as SchemaNode;
      const validate = validatorFor<unknown>(file, `${network} bridge config`, "FG_CONFIG_INVALID");
      const examples = schema.examples ?? [];
      expect(examples.length, `${file} shows a minimal section under "examples"`).toBeGreaterThan(0);
      const paths = defaultedPaths(schema);
      expect(paths.length).toBeGreaterThan(0);
      for (const example of examples) {
        const resolved = validate(structuredClone(example));
        for (const path of paths) {
          expect(valueAt(resolved, path), `${network}: /${path.join("/")}`).toBeDefined();
        }
      }
    });
  }
});
