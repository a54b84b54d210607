/** Runs tasks one at a time per key, in the order given, and tasks of different keys concurrently. */
export class KeyedSequencer {
  private readonly tails = new Map<string, Promise<void>>();

  /** Queues task behind the earlier tasks of the same key. A task's failure does not stop the queue. */
  run(key: string, task: () => Promise<void>): void {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const next = previous.then(task).catch(() => undefined);
    this.tails.set(key, next);
    void next.then(() => {
      // Drop the key once its queue is empty, so the map does not grow with every conversation ever seen.
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
  }

  /** Resolves when every queued task has finished. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}
