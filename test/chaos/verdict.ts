/**
 * What the far clients saw, counted: per stream (one sender's messages as one receiver's conversation holds
 * them) what was lost, doubled and out of order, and how long after the fault flow was normal again.
 */
import { appendFileSync } from "node:fs";
import type { BusTrace } from "./busTrace.js";
import type { Network } from "./participants.js";
import type { StreamRecord } from "./stream.js";

/**
 * A message that took longer than this to arrive was held up. Generous: on a loaded machine a message
 * sometimes takes a few seconds with no fault at all.
 */
export const NORMAL_LATENCY_MS = 5000;

export interface StreamCount {
  from: Network;
  to: Network;
  sent: number;
  /** Sequence numbers sent and never seen at the receiver. */
  lost: number[];
  /** Sequence numbers seen more than once. */
  doubled: number[];
  /** Sequence numbers that arrived after a later one of the same sender. */
  outOfOrder: number[];
  /** Sequence numbers seen that the sender never got confirmed (should not happen). */
  unconfirmed: number[];
  /** The longest one of its messages took to arrive, in seconds. */
  worstLatencySeconds: number;
  /** Seconds from the fault's end until its flow was normal again (0: nothing was held up). */
  recoverySeconds: number;
}

export interface Verdict {
  fault: string;
  sent: number;
  /** Copies that should arrive: each message at each other participant. */
  expected: number;
  arrived: number;
  lost: number;
  doubled: number;
  outOfOrder: number;
  /**
   * Seconds from the end of the fault until flow was normal again in every stream (0: nothing was held up);
   * undefined when some stream never recovered (its last message never arrived). A stream's flow is normal
   * again once the last of its messages that took longer than NORMAL_LATENCY_MS has arrived: a stream that
   * carries its backlog and then stalls again has not recovered until the second stall is over.
   */
  recoverySeconds: number | undefined;
  /** Seconds the fault itself lasted (a process down, a server restarting, a stall). */
  faultSeconds: number;
  /** The longest time one message took to arrive, in seconds. */
  worstLatencySeconds: number;
  streams: StreamCount[];
}

const seconds = (ms: number): number => Math.round(ms / 100) / 10;

export function countStreams(fault: string, record: StreamRecord): Verdict {
  const streams: StreamCount[] = [];
  let recovered = true;
  for (const [to, arrivals] of record.arrivals) {
    for (const [from, sent] of record.sent) {
      if (from === to) continue;
      const seen = new Map<number, number>();
      const outOfOrder: number[] = [];
      let highest = 0;
      let worst = 0;
      /** When the last message held up arrived. */
      let lastHeldUp = record.faultEndedAt;
      for (const arrival of arrivals.filter((a) => a.from === from)) {
        const copies = (seen.get(arrival.seq) ?? 0) + 1;
        seen.set(arrival.seq, copies);
        if (copies > 1) continue;
        if (arrival.seq < highest) outOfOrder.push(arrival.seq);
        highest = Math.max(highest, arrival.seq);
        const sentAt = sent.get(arrival.seq);
        if (sentAt === undefined) continue;
        const latency = arrival.at - sentAt;
        worst = Math.max(worst, latency);
        if (latency > NORMAL_LATENCY_MS) lastHeldUp = Math.max(lastHeldUp, arrival.at);
      }
      const lost = [...sent.keys()].filter((seq) => !seen.has(seq));
      // Flow is back only if the stream's last message arrived.
      if (lost.includes(Math.max(...sent.keys()))) recovered = false;
      streams.push({
        from,
        to,
        sent: sent.size,
        lost,
        doubled: [...seen].filter(([, copies]) => copies > 1).map(([seq]) => seq),
        outOfOrder,
        unconfirmed: [...seen.keys()].filter((seq) => !sent.has(seq)),
        worstLatencySeconds: seconds(worst),
        recoverySeconds: seconds(lastHeldUp - record.faultEndedAt),
      });
    }
  }
  const sum = (pick: (s: StreamCount) => number): number => streams.reduce((n, s) => n + pick(s), 0);
  return {
    fault,
    sent: [...record.sent.values()].reduce((n, seqs) => n + seqs.size, 0),
    expected: sum((s) => s.sent),
    arrived: sum((s) => s.sent - s.lost.length),
    lost: sum((s) => s.lost.length),
    doubled: sum((s) => s.doubled.length),
    outOfOrder: sum((s) => s.outOfOrder.length),
    recoverySeconds: recovered ? Math.max(0, ...streams.map((s) => s.recoverySeconds)) : undefined,
    faultSeconds: seconds(record.faultEndedAt - record.faultStartedAt),
    worstLatencySeconds: Math.max(0, ...streams.map((s) => s.worstLatencySeconds)),
    streams,
  };
}

/**
 * A few of a stream's sequence numbers, for a line a person reads; with the bus's record, each says what the
 * bus holds of it: "26 (events 1, deliveries 2)", or why it was dead-lettered.
 */
function some(seqs: number[], stream: StreamCount, trace: BusTrace | undefined): string {
  const described = seqs.slice(0, 8).map((seq) => {
    if (trace === undefined) return String(seq);
    const message = `${stream.from} ${seq}`;
    const delivery = `${message}>${stream.to}`;
    const dead = trace.deadLetters.get(delivery) ?? trace.deadLetters.get(message);
    return (
      `${seq} (events ${trace.events.get(message) ?? 0}, deliveries ${trace.deliveries.get(delivery) ?? 0}` +
      `${dead === undefined ? "" : `, dead-lettered by ${dead}`})`
    );
  });
  return `${described.join(", ")}${seqs.length > 8 ? ", …" : ""}`;
}

/**
 * The verdict as one line (and a line per stream that broke the promise), printed on stderr and, where
 * FEDGATE_CHAOS_REPORT names a file, appended to it: the numbers the README's delivery guarantees quote.
 */
export function report(verdict: Verdict, boundSeconds: number, trace?: BusTrace): string {
  const recovery =
    verdict.recoverySeconds === undefined
      ? "did not recover"
      : `recovered ${verdict.recoverySeconds} s after it ended (bound ${boundSeconds} s)`;
  const lines = [
    `chaos | ${verdict.fault} | sent ${verdict.sent}, arrived ${verdict.arrived}/${verdict.expected} | ` +
      `lost ${verdict.lost}, doubled ${verdict.doubled}, out of order ${verdict.outOfOrder} | ` +
      `fault lasted ${verdict.faultSeconds} s, ${recovery}, slowest message ${verdict.worstLatencySeconds} s`,
    `chaos |   by stream (slowest message, recovery): ` +
      verdict.streams
        .map((s) => `${s.from}>${s.to} ${s.worstLatencySeconds} s, ${s.recoverySeconds} s`)
        .join("; "),
    ...verdict.streams
      .filter((s) => s.lost.length + s.doubled.length + s.outOfOrder.length + s.unconfirmed.length > 0)
      .map(
        (s) =>
          `chaos |   ${s.from} -> ${s.to}: lost ${s.lost.length} [${some(s.lost, s, trace)}], ` +
          `doubled ${s.doubled.length} [${some(s.doubled, s, trace)}], ` +
          `out of order ${s.outOfOrder.length} [${some(s.outOfOrder, s, trace)}]` +
          (s.unconfirmed.length > 0 ? `, unconfirmed ${s.unconfirmed.length}` : ""),
      ),
  ];
  const text = lines.join("\n") + "\n";
  process.stderr.write(text);
  const file = process.env["FEDGATE_CHAOS_REPORT"];
  if (file !== undefined && file !== "") appendFileSync(file, text);
  return text;
}
