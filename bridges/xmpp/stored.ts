import type { Logger } from "pino";
import { untilStored } from "../kit/untilStored.js";
import type { XmppStoreRetry } from "./config.types.js";

/** Runs `attempt` until the bus has stored what it writes, or the bridge gives up or stops (untilStored). */
export type Stored = <T>(attempt: () => Promise<T>, context: Record<string, unknown>) => Promise<T>;

/** Stored, retrying as `storeRetry` says until `signal` (the bridge stopping) ends the retries. */
export function storedWith(
  storeRetry: Pick<XmppStoreRetry, "maxDelayMs" | "giveUpAfterMs">,
  signal: AbortSignal,
  log: Logger,
): Stored {
  const { maxDelayMs, giveUpAfterMs } = storeRetry;
  return (attempt, context) => untilStored(attempt, { signal, log, context, maxDelayMs, giveUpAfterMs });
}
