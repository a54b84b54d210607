import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bridgeNetworks } from "../../../bridges/index.js";
import { schemaDir, validateConfig, validatorFor } from "../../../schemas/contract/schemas.js";

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  default?: unknown;
  examples?: unknown[];
}

/** Every property path with a default, however deep: the generated (resolved) types require them. */
function defaultedPaths(node: SchemaNode, prefix: string[] = []): string[][] {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]) => [
    ...(child.default === undefined ? [] : [[...prefix, key]]),
    ...defaultedPaths(child, [...prefix, key]),
  ]);
}

function valueAt(value: unknown, path: string[]): unknown {
  return path.reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], value);
}

/** Wherever the validated value has the object a defaulted key belongs to, the key is set. */
function expectDefaultsFilled(schema: SchemaNode, resolved: unknown, what: string): void {
  const paths = defaultedPaths(schema);
  expect(paths.length, what).toBeGreaterThan(0);
  for (const path of paths) {
    if (valueAt(resolved, path.slice(0, -1)) === undefined) continue;
    expect(valueAt(resolved, path), `${what}: /${path.join("/")}`).toBeDefined();
  }
}

function schemaAt(file: string): SchemaNode {
  return JSON.parse(readFileSync(file, "utf8")) as SchemaNode;
}

describe("config - the defaults are the schema's, filled in by its validator", () => {
  it("config - a minimal config comes out with the sections the code reads and their defaults", () => {
    const resolved = validateConfig({ nats: { url: "nats://127.0.0.1:4222" } });
    expect(resolved.gateway.ackWaitMs).toBeGreaterThan(0);
    expect(resolved.log.level).toBeDefined();
    expect(resolved.links).toEqual([]);
    expectDefaultsFilled(schemaAt(join(schemaDir, "config.schema.json")), resolved, "config");
  });

  for (const network of bridgeNetworks) {
    it(`config - bridges.${network}: a minimal section comes out with every defaulted key set`, () => {
      const file = `bridges/${network}/config.schema.json`;
      const schema = schemaAt(file);
      const validate = validatorFor<unknown>(file, `${network} bridge config`, "FG_CONFIG_INVALID");
      const examples = schema.examples ?? [];
      expect(examples.length, `${file} shows a minimal section under "examples"`).toBeGreaterThan(0);
      for (const example of examples) {
        expectDefaultsFilled(schema, validate(structuredClone(example)), network);
      }
    });
  }
});
