/**
 * Keeping native input until the bus has stored it. A bridge that acknowledged input its server will not
 * send again (an XMPP component gets no redelivery, a push channel moves on) must retry while the bus is
 * away, and must not go on to the conversation's next message meanwhile: that one would be stored first,
 * and the conversation's catch-up point would move past the one still waiting.
 */
import { setTimeout as pause } from "node:timers/promises";
import type { Logger } from "pino";
import { FedgateError, TransientError } from "../../schemas/contract/errors.js";

/** How often, and how long, to try. */
export interface StoreRetry {
  /** Pause after the first failed attempt; each further failure doubles it. */
  firstDelayMs?: number;
  /** Longest pause between two attempts: once the bus is back, storing resumes within it. */
  maxDelayMs?: number;
  /** How long after the first attempt to give up; without it, attempts go on until stopped. */
  giveUpAfterMs?: number;
}

export interface UntilStoredOptions extends StoreRetry {
  /** Stops the retries: a pause ends at once, and no further attempt starts. */
  signal: AbortSignal;
  log: Logger;
  /** What is being stored, for the log line of each failed attempt (ids, never message text). */
  context?: Record<string, unknown>;
}

export const DEFAULT_FIRST_DELAY_MS = 250;
export const DEFAULT_MAX_DELAY_MS = 5_000;

/**
 * Input that was not stored: the attempts gave up, or the bridge is stopping. Transient, like the failure
 * that is its cause: the input is still good, and must be read again (from an archive) or sent again.
 */
export class NotStoredError extends TransientError {
  constructor(
    readonly lastFailure: FedgateError,
    readonly attempts: number,
    readonly stopped: boolean,
    elapsedMs: number,
  ) {
    super(
      lastFailure.code,
      `not stored after ${attempts} attempt(s) in ${Math.round(elapsedMs / 1000)} s${stopped ? ", stopping" : ""}: ${lastFailure.message}`,
      { cause: lastFailure, detail: { attempts, stopped } },
    );
  }
}

/**
 * Runs `attempt` until it resolves, retrying a transient failure (the bus or a store away) after a pause that
 * doubles from firstDelayMs up to maxDelayMs. Any other failure is thrown at once: retrying cannot help.
 * The first attempt always runs; after a failure, a stop signal or giveUpAfterMs ends the retries with a
 * NotStoredError whose cause is the last failure.
 */
export async function untilStored<T>(attempt: () => Promise<T>, options: UntilStoredOptions): Promise<T> {
  const firstDelayMs = options.firstDelayMs ?? DEFAULT_FIRST_DELAY_MS;
  const maxDelayMs = Math.max(firstDelayMs, options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
  const started = Date.now();
  // A function, not the property: the pause may change what an earlier check of it saw.
  const stopped = (): boolean => options.signal.aborted;
  for (let attempts = 1; ; attempts++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof FedgateError) || !error.transient) throw error;
      const elapsedMs = Date.now() - started;
      const left = options.giveUpAfterMs === undefined ? Infinity : options.giveUpAfterMs - elapsedMs;
      if (stopped() || left <= 0) throw new NotStoredError(error, attempts, stopped(), elapsedMs);
      const delayMs = Math.min(firstDelayMs * 2 ** Math.min(attempts - 1, 30), maxDelayMs, left);
      options.log.warn(
        { ...options.context, err: error, attempt: attempts, retryInMs: delayMs },
        "not stored on the bus yet; retrying",
      );
      await pause(delayMs, undefined, { signal: options.signal }).catch(() => undefined);
      if (stopped()) throw new NotStoredError(error, attempts, true, Date.now() - started);
    }
  }
}
