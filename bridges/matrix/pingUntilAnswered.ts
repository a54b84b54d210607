/**
 * The appservice ping the Matrix bridge sends as soon as it listens: a homeserver that failed to reach it
 * holds it for down until a retry after a back-off, and Synapse meanwhile drops the room keys it has for it.
 */
import type { Logger } from "../../gateway/platform/log.js";
import type { MatrixClient } from "./MatrixClient.js";

/** Pings that go unanswered before the bridge starts without: each waits half a second longer than the last. */
const START_PINGS = 5;

/**
 * The appservice ping, again until the homeserver answers it. Synapse can fail one that reached the bridge
 * (a retry of its own under way at the same moment); unanswered, it goes on holding the bridge for down.
 */
export async function pingUntilAnswered(
  client: Pick<MatrixClient, "ping">,
  appserviceId: string,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.ping(appserviceId, timeoutMs);
      return;
    } catch (error) {
      if (attempt === START_PINGS) {
        log.warn({ err: error }, "the homeserver does not answer the appservice ping; starting without");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, attempt * 500));
    }
  }
}
