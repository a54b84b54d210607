/**
 * Temporary folders for a test file's config and policy files, removed once the file's tests are done, so
 * that runs do not pile folders up in the system's temporary directory.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

const made: string[] = [];
// Imported while a test file is collected (each file gets its own copy of this module), so this hook
// belongs to that file. The benchmark imports the same helpers outside vitest, where there is no suite.
if (process.env["VITEST"] !== undefined) {
  afterAll(async () => {
    await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });
}

export async function scratchDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fedgate-${name}-`));
  made.push(dir);
  return dir;
}
