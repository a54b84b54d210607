/**
 * What the server last said of one durable consumer's lag, asked at most every CONSUMER_INFO_MAX_AGE_MS: the
 * lag gauges read it for the consumers a process runs, the console for the bridges' consumers it shows.
 */
import type { ConsumerLag } from "./Bus.js";

/** How old a consumer's lag may be before it is asked of the server again. */
export const CONSUMER_INFO_MAX_AGE_MS = 15_000;

export class ConsumerLagReading {
  /** undefined until the first answer, and while the server knows no such consumer. */
  private last: ConsumerLag | undefined;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private fetching: Promise<void> | undefined;

  constructor(
    readonly stream: string,
    readonly consumer: string,
    private readonly fetch: () => Promise<ConsumerLag | undefined>,
  ) {}

  /** The last answer at once; asks again, for later, when it is stale. Never waits for the server. */
  current(): ConsumerLag | undefined {
    if (this.stale()) void this.refresh();
    return this.last;
  }

  /** The last answer, asked anew first when it is stale. */
  async fresh(): Promise<ConsumerLag | undefined> {
    if (this.stale()) await this.refresh();
    return this.last;
  }

  private stale(): boolean {
    return Date.now() - this.fetchedAt >= CONSUMER_INFO_MAX_AGE_MS;
  }

  private refresh(): Promise<void> {
    this.fetching ??= this.fetch()
      .then((lag) => {
        this.last = lag;
      })
      // Unknown for now (NATS away): the last answer stands, and the next read after the max age asks again.
      .catch(() => undefined)
      .finally(() => {
        this.fetchedAt = Date.now();
        this.fetching = undefined;
      });
    return this.fetching;
  }
}
