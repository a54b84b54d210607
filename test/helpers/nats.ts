/**
 * A real nats-server per test file. Where nats-server is missing and cannot be installed (not root), the
 * tier is skipped with the reason printed; under CI it fails instead, because CI must run every test.
 */
import { LocalNatsServer } from "../../gateway/demo/LocalNatsServer.js";

export async function startNatsOrSkip(): Promise<LocalNatsServer | undefined> {
  try {
    return await LocalNatsServer.start();
  } catch (error) {
    if (process.env["CI"] === "true") throw error;
    console.warn(`SKIPPED: integration tests need nats-server: ${(error as Error).message}`);
    return undefined;
  }
}
