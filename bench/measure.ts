/** What every benchmark measures, and how the bridges' benchmarks time a message from client to arrival. */

export interface RunFigures {
  name: string;
  events: number;
  throughputPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** The `p`th percentile of ascending `sorted`; NaN when it is empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * Sends `events` messages through `send` and measures, per message, the time until `onArrival`'s listener
 * reports its text: first as fast as the client sends (throughput), then `perSecond` (latency).
 *
 * At most `inFlight` sends are unfinished at once (1 by default: each send finishes before the next starts).
 * A send that resolves once the message is written, as XMPP's does, leaves the same figures whatever the
 * number; one that resolves with the server's answer, as Matrix's does, needs several at once to measure the
 * server rather than the round trip.
 */
export async function measure(
  name: string,
  send: (text: string) => Promise<void>,
  events: number,
  perSecond: number,
  onArrival: (listener: (text: string) => void) => void,
  options: { inFlight?: number } = {},
): Promise<RunFigures> {
  const limit = options.inFlight ?? 1;
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let arrived = 0;
  onArrival((text) => {
    const at = sentAt.get(text);
    if (at === undefined) return;
    latencies.push(performance.now() - at);
    sentAt.delete(text);
    arrived++;
  });
  const inFlight = new Set<Promise<void>>();
  /** Starts a send once one of the slots is free; a failed send fails the run when awaited. */
  const start = async (text: string): Promise<void> => {
    while (inFlight.size >= limit) await Promise.race(inFlight);
    sentAt.set(text, performance.now());
    const sending = send(text).then(() => {
      inFlight.delete(sending);
    });
    // Awaited by a later race or by waitFor; until then its failure must not count as unhandled.
    void sending.catch(() => undefined);
    inFlight.add(sending);
  };
  const waitFor = async (count: number): Promise<void> => {
    await Promise.all(inFlight);
    const deadline = performance.now() + 60_000;
    while (arrived < count && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (arrived < count) throw new Error(`${name}: only ${arrived}/${count} messages arrived`);
  };

  const burstStart = performance.now();
  for (let n = 0; n < events; n++) await start(`${name} burst ${n}`);
  await waitFor(events);
  const throughputPerSecond = events / ((performance.now() - burstStart) / 1000);

  latencies.length = 0;
  const begin = performance.now();
  for (let n = 0; n < events; n++) {
    const wait = begin + (n * 1000) / perSecond - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    await start(`${name} paced ${n}`);
  }
  await waitFor(events * 2);
  latencies.sort((a, b) => a - b);
  return {
    name,
    events,
    throughputPerSecond,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}
