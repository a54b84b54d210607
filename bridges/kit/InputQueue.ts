/**
 * Native input of each conversation, handled one at a time in the order it arrived, with a bound on how much
 * of it may wait: while the bus is away, what a conversation receives waits in memory behind the message
 * being retried (see untilStored), and a busy or hostile sender must not make that grow without end.
 */
import { KeyedSequencer } from "../../gateway/platform/bus/KeyedSequencer.js";

export class InputQueue {
  private readonly sequencer = new KeyedSequencer();
  /** Native input queued and not yet finished, per conversation. */
  private readonly waiting = new Map<string, number>();
  private total = 0;

  /**
   * @param limit how many inputs of one conversation may wait at once.
   * @param totalLimit how many may wait in all conversations together: where anyone can open a conversation
   *   (a direct chat), their number is no bound.
   */
  constructor(
    private readonly limit: number,
    private readonly totalLimit = Infinity,
  ) {}

  /**
   * Queues native input of conversation `key` behind its earlier input. Returns false, queuing nothing, when
   * `limit` inputs of it, or `totalLimit` in all, wait already: the caller decides what becomes of this one.
   */
  offer(key: string, task: () => Promise<void>): boolean {
    const count = this.waiting.get(key) ?? 0;
    if (count >= this.limit || this.total >= this.totalLimit) return false;
    this.waiting.set(key, count + 1);
    this.total++;
    this.sequencer.run(key, async () => {
      try {
        await task();
      } finally {
        this.total--;
        const left = (this.waiting.get(key) ?? 1) - 1;
        if (left > 0) this.waiting.set(key, left);
        else this.waiting.delete(key);
      }
    });
    return true;
  }

  /** Queues the bridge's own work on conversation `key` (a join, a catch-up): not native input, not bounded. */
  run(key: string, task: () => Promise<void>): void {
    this.sequencer.run(key, task);
  }

  /** Resolves when everything queued has finished. */
  idle(): Promise<void> {
    return this.sequencer.idle();
  }
}
