/** Undoing what a benchmark set up, whatever step failed. */

/** What a benchmark has set up so far, each with how to undo it, in the order set up. */
export type Cleanups = (() => unknown)[];

/**
 * Undoes `cleanups` last first and empties the list (a second call, from a signal, finds nothing left). Each
 * step on its own, so that one failing to stop leaves no server running behind it.
 */
export async function undo(cleanups: Cleanups, what: string): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse())
    await Promise.resolve()
      .then(cleanup)
      .catch((error: unknown) => process.stderr.write(`bench: ${what} clean-up: ${String(error)}\n`));
}
