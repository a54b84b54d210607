/** A real nats-server per test file (see servers.ts for when it is skipped). */
import { LocalNatsServer } from "../../gateway/demo/LocalNatsServer.js";
import { startOrSkip } from "./servers.js";

export function startNatsOrSkip(options: { config?: string } = {}): Promise<LocalNatsServer | undefined> {
  return startOrSkip("nats-server", () => LocalNatsServer.start(options));
}
