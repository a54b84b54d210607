/**
 * Real servers per test file. Where one is missing and cannot be installed (not root), its tier is skipped
 * with the reason printed; under CI it fails instead, because CI must run every test. A wrong setting
 * (FEDGATE_SERVERS, say) always fails: skipping would hide a typo behind a green run.
 */
import { ConfigError } from "../../schemas/contract/errors.js";

export async function startOrSkip<T>(name: string, start: () => Promise<T>): Promise<T | undefined> {
  try {
    return await start();
  } catch (error) {
    if (process.env["CI"] === "true" || error instanceof ConfigError) throw error;
    console.warn(`SKIPPED: integration tests need ${name}: ${(error as Error).message}`);
    return undefined;
  }
}
