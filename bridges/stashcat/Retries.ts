/** The pauses between attempts at what failed in passing, cut short when the bridge stops. */
import { setTimeout as sleep } from "node:timers/promises";

/** Longest pause between two attempts at a message that failed in passing. */
const RETRY_MAX_MS = 15_000;

export class Retries {
  private stopped = false;
  /** Ends the pauses between retries at once when the bridge stops. */
  private readonly abort = new AbortController();

  /** Whether the bridge stops: no attempt is begun any more. */
  get stopping(): boolean {
    return this.stopped;
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }

  /** Waits before attempt `attempt + 1`: longer each time, up to RETRY_MAX_MS; at once when the bridge stops. */
  async pause(attempt: number): Promise<void> {
    await sleep(retryDelayMs(attempt), undefined, { signal: this.abort.signal }).catch(() => undefined);
  }
}

export function retryDelayMs(attempt: number): number {
  return Math.min(RETRY_MAX_MS, 250 * 2 ** attempt);
}
