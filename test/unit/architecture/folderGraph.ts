/** The import graph of the shipped tree, folder by folder, as the relative imports in its sources draw it. */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const importPattern =
  /(?:^|\s)(?:import|export)\s[^"';]*?from\s+"(\.{1,2}\/[^"]+)"|import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g;

function sourcesUnder(root: string, dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourcesUnder(root, path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Folder → the folders its files import from (a folder's imports of itself left out). */
export function folderGraph(root: string, tops: readonly string[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of tops.flatMap((top) => sourcesUnder(root, top))) {
    const from = dirname(file);
    const edges = graph.get(from) ?? new Set<string>();
    graph.set(from, edges);
    for (const match of readFileSync(join(root, file), "utf8").matchAll(importPattern)) {
      const specifier = match[1] ?? match[2] ?? "";
      const to = dirname(relative(root, resolve(root, from, specifier)));
      if (to !== from) edges.add(to);
    }
  }
  return graph;
}

/** Each cycle of the graph once, as the folders along it. */
export function cyclesOf(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (node: string): void => {
    const at = path.indexOf(node);
    if (at >= 0) {
      cycles.push([...path.slice(at), node]);
      return;
    }
    if (done.has(node)) return;
    path.push(node);
    for (const next of graph.get(node) ?? []) visit(next);
    path.pop();
    done.add(node);
  };
  for (const node of graph.keys()) visit(node);
  return cycles;
}
