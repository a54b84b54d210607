import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";
import { bridgeNetworks } from "../../../bridges/index.js";
import { demoParts } from "../../harness/demo/demoParts.js";
import { repoRoot } from "../../helpers/processes.js";
import { cyclesOf, folderGraph } from "./folderGraph.js";

const eslint = new ESLint({ cwd: repoRoot });

/** The boundary rule's messages when `file` (an existing source) also imports `specifier`. */
async function boundaryErrors(file: string, specifier: string): Promise<string[]> {
  const text = `${await readFile(join(repoRoot, file), "utf8")}\nexport * from "${specifier}";\n`;
  const [result] = await eslint.lintText(text, { filePath: join(repoRoot, file) });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === "import-x/no-restricted-paths")
    .map((m) => m.message);
}

describe("architecture - each role in its place", () => {
  it.each([
    [
      "the platform imports the core",
      "gateway/platform/log.ts",
      "../core/routing/Router.js",
      /only the contract/,
    ],
    [
      "the core imports an adapter",
      "gateway/core/routing/Router.ts",
      "../../../bridges/xmpp/toStanza.js",
      /knows no protocol/,
    ],
    [
      "an adapter imports the core",
      "bridges/xmpp/toStanza.ts",
      "../../gateway/core/policy/markings.js",
      /never the core/,
    ],
    [
      "an adapter imports another",
      "bridges/xmpp/toStanza.ts",
      "../matrix/matrixIds.js",
      /nothing of the other bridges/,
    ],
    ["the kit imports an adapter", "bridges/kit/cleanText.ts", "../stashcat/markdown.js", /knows none/],
    ["an adapter imports the registry", "bridges/matrix/matrixIds.ts", "../index.js", /Only the CLI/],
    [
      "the contract imports the platform",
      "schemas/contract/subjects.ts",
      "../../gateway/platform/log.js",
      /imports nothing of ours/,
    ],
    [
      "the CLI imports the test harness",
      "gateway/cli/main.ts",
      "../../test/harness/demo/demoParts.js",
      /test harness/,
    ],
  ])(
    "architecture - lint refuses it when %s",
    async (_what, file, specifier, message) => {
      const errors = await boundaryErrors(file, specifier);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(message);
    },
    60_000,
  );

  it("architecture - lint allows what the roles may import: an adapter the kit, the platform and the contract", async () => {
    for (const specifier of [
      "../kit/cleanText.js",
      "../../gateway/platform/log.js",
      "../../schemas/contract/subjects.js",
    ])
      expect(await boundaryErrors("bridges/xmpp/toStanza.ts", specifier)).toEqual([]);
  }, 60_000);

  it("architecture - no folder of what ships imports, through others, a folder that imports it", () => {
    const graph = folderGraph(repoRoot, ["schemas", "gateway", "bridges"]);
    expect(graph.size).toBeGreaterThan(10);
    expect(cyclesOf(graph)).toEqual([]);
  });

  it("architecture - a cycle between folders is found", () => {
    const graph = new Map([
      ["a", new Set(["b"])],
      ["b", new Set(["c"])],
      ["c", new Set(["a"])],
      ["d", new Set(["a"])],
    ]);
    expect(cyclesOf(graph)).toEqual([["a", "b", "c", "a"]]);
  });

  it("architecture - the demo has a part for every network of the registry, and for nothing else", () => {
    expect(Object.keys(demoParts).sort()).toEqual([...bridgeNetworks].sort());
  });
});
