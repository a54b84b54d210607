/**
 * One chaos test from start to end: the demo's people in their conversations, a warm-up until every route
 * carries, the paced stream with the fault striking in it, the count, the report line, and the promise
 * asserted: every message exactly once, in order per conversation, flow back within ackWaitMs + 10 s.
 */
import { expect } from "vitest";
import type { ChaosFederation } from "./federation.js";
import { traceBus } from "./busTrace.js";
import { runStream, streamPattern, warmUp, type StreamControl, type StreamOptions } from "./stream.js";
import { countStreams, report, type Verdict } from "./verdict.js";

/**
 * 3 × 100 messages, one every 500 ms from each participant (6 a second in all, 600 arrivals to count), for
 * about 55 s; the fault strikes 10 s in, when the stream is well under way. A faster pace leaves a loaded
 * machine (two such files at once, each with its Synapse) too little room to catch up after a fault.
 */
export const defaultStream: StreamOptions = {
  messagesPerSender: 100,
  intervalMs: 500,
  faultAtMs: 10_000,
  drainTimeoutMs: 90_000,
};

/** How long a chaos test may take: setting up its people, the stream, the drain, the count. */
export const CHAOS_TEST_TIMEOUT_MS = 300_000;

/** Runs the stream through `federation` with `fault` striking; prints and returns the verdict. */
export async function strike(
  federation: ChaosFederation,
  fault: string,
  action: (control: StreamControl) => Promise<void>,
  options: Partial<StreamOptions> = {},
): Promise<Verdict> {
  const participants = await federation.participants();
  try {
    await warmUp(participants);
    const record = await runStream(participants, { ...defaultStream, ...options }, action);
    const verdict = countStreams(fault, record);
    // Only to explain a broken promise: a trace that cannot be read takes nothing from the count.
    const trace = await traceBus(federation.nats.url, streamPattern(record.run)).catch((error: unknown) => {
      process.stderr.write(`chaos: the bus could not be read back: ${String(error)}\n`);
      return undefined;
    });
    report(verdict, boundSeconds(federation), trace);
    await federation.keepRecord(fault, record);
    return verdict;
  } finally {
    await Promise.all(participants.map((p) => p.close()));
  }
}

/** The recovery the suite promises: the core's ack wait and ten seconds. */
export function boundSeconds(federation: ChaosFederation): number {
  return federation.settings.ackWaitMs / 1000 + 10;
}

/** Nothing lost, nothing doubled, order kept, flow back within the bound: all shown at once if not. */
export function expectPromiseKept(federation: ChaosFederation, verdict: Verdict): void {
  const bound = boundSeconds(federation);
  const recovery = verdict.recoverySeconds;
  expect({
    lost: verdict.lost,
    doubled: verdict.doubled,
    outOfOrder: verdict.outOfOrder,
    recovery:
      recovery === undefined
        ? "never: the last messages did not arrive"
        : recovery <= bound
          ? `within ${bound} s`
          : `${recovery} s, beyond ${bound} s`,
  }).toEqual({ lost: 0, doubled: 0, outOfOrder: 0, recovery: `within ${bound} s` });
}
