/** A real nats-server per test file (see servers.ts for when it is skipped). */
import { LocalNatsServer } from "../harness/servers/LocalNatsServer.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { eventually } from "./fixtures.js";
import { startOrSkip } from "./servers.js";

export function startNatsOrSkip(options: { config?: string } = {}): Promise<LocalNatsServer | undefined> {
  return startOrSkip("nats-server", () => LocalNatsServer.start(options));
}

/** Resolves once what `sender` publishes on `subject` reaches `receiver` (a leafnode between them is up). */
export async function untilCarried(
  sender: NatsConnection,
  receiver: NatsConnection,
  subject: string,
): Promise<void> {
  const probe = receiver.subscribe(subject);
  let arrived = false;
  void (async () => {
    for await (const _ of probe) arrived = true;
  })();
  try {
    await eventually(
      async () => {
        sender.publish(subject, "");
        await sender.flush();
        await new Promise((resolve) => setTimeout(resolve, 100));
        return arrived ? true : undefined;
      },
      20_000,
      `${subject} across the leafnode`,
    );
  } finally {
    probe.unsubscribe();
  }
}
