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

/** Where a run's messages are seen to arrive: each such place is measured on its own. */
export interface ArrivalPoint {
  name: string;
  /** Registers the listener that is told the text of each message arriving there. */
  onArrival: (listener: (text: string) => void) => void;
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
  const [figures] = await measureEach(name, send, events, perSecond, [{ name, onArrival }], options);
  if (figures === undefined) throw new Error(`${name}: no figures`);
  return figures;
}

/**
 * measure() for messages that arrive at several places at once (a conversation linked across networks): the
 * texts are `<label> burst <n>` and `<label> paced <n>`; each place's figures are its own, its throughput
 * timed until the last of the burst arrived there. Every place is waited for before the paced run starts;
 * `afterBurst`, if given, runs then, before the paced run.
 */
export async function measureEach(
  label: string,
  send: (text: string) => Promise<void>,
  events: number,
  perSecond: number,
  points: ArrivalPoint[],
  options: { inFlight?: number; afterBurst?: () => Promise<void> } = {},
): Promise<RunFigures[]> {
  const limit = options.inFlight ?? 1;
  const sentAt = new Map<string, number>();
  const arrivals = points.map((point) => {
    // A text heard twice at one place, or one of another run, counts once or not at all.
    const pending = new Set<string>();
    const arrival = { pending, latencies: [] as number[], arrived: 0, lastAt: 0 };
    point.onArrival((text) => {
      const at = sentAt.get(text);
      if (at === undefined || !pending.delete(text)) return;
      arrival.lastAt = performance.now();
      arrival.latencies.push(arrival.lastAt - at);
      arrival.arrived++;
    });
    return arrival;
  });
  const inFlight = new Set<Promise<void>>();
  /** Starts a send once one of the slots is free; a failed send fails the run when awaited. */
  const start = async (text: string): Promise<void> => {
    while (inFlight.size >= limit) await Promise.race(inFlight);
    for (const arrival of arrivals) arrival.pending.add(text);
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
    const behind = () => arrivals.findIndex((a) => a.arrived < count);
    while (behind() >= 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const late = behind();
    if (late >= 0)
      throw new Error(
        `${points[late]?.name ?? label}: only ${arrivals[late]?.arrived ?? 0}/${count} messages arrived`,
      );
  };

  const burstStart = performance.now();
  for (let n = 0; n < events; n++) await start(`${label} burst ${n}`);
  await waitFor(events);
  const throughputs = arrivals.map((a) => events / ((a.lastAt - burstStart) / 1000));
  await options.afterBurst?.();

  for (const arrival of arrivals) arrival.latencies.length = 0;
  const begin = performance.now();
  for (let n = 0; n < events; n++) {
    const wait = begin + (n * 1000) / perSecond - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    await start(`${label} paced ${n}`);
  }
  await waitFor(events * 2);
  return points.map((point, i) => {
    const latencies = (arrivals[i]?.latencies ?? []).sort((a, b) => a - b);
    return {
      name: point.name,
      events,
      throughputPerSecond: throughputs[i] ?? Number.NaN,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
    };
  });
}
