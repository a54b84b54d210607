/**
 * The paced, sequence-numbered stream the chaos suite sends through the federation while a fault strikes:
 * every participant writes `chaos <run> <network> <n>` for n = 1, 2, … at a steady pace, and reads its
 * conversation all along, noting when each of the others' messages first arrived; at the end it reads the
 * conversation back from its end, and every copy of every message there is counted.
 */
import { randomBytes } from "node:crypto";
import type { Network, Participant, Read } from "./participants.js";

export interface StreamOptions {
  /** Messages each participant writes. */
  messagesPerSender: number;
  /** Pause between two messages of one participant. */
  intervalMs: number;
  /** When the fault strikes, counted from the stream's first message. */
  faultAtMs: number;
  /** How long the others' messages may take to arrive after the last is sent, before counting. */
  drainTimeoutMs: number;
}

/** One copy of a message arriving in a participant's conversation. */
export interface Arrival {
  from: Network;
  seq: number;
  /** The receiving server's id of this copy. */
  id: string;
  at: number;
}

/** What the stream did: what each participant sent (and when the server had it), what each one read. */
export interface StreamRecord {
  run: string;
  /** By sender: sequence number -> when its server stored it. */
  sent: Map<Network, Map<number, number>>;
  /** By receiver: every copy of the others' messages, in the order its conversation holds them. */
  arrivals: Map<Network, Arrival[]>;
  /** When the fault began and when it was over (the process or server back, the stall released). */
  faultStartedAt: number;
  faultEndedAt: number;
  /** Each participant's errors while reading or writing, as counts per message. */
  troubles: Map<string, number>;
}

/** What a fault can do to the stream: hold a participant's writing while its own server is away. */
export interface StreamControl {
  /** Stops `network`'s participant writing; resolves once its message in hand is stored. */
  holdSending(network: Network): Promise<void>;
  /** Lets it write again, once its client can. */
  resumeSending(network: Network): void;
  /** Has `network`'s participant write its next `count` messages one right after the other. */
  hurry(network: Network, count: number): void;
}

const POLL_MS = 250;

/** What the stream's texts look like: the sender's network in group 1, the sequence number in group 2. */
export function streamPattern(run: string): RegExp {
  return new RegExp(`chaos ${run} (xmpp|matrix|stashcat) (\\d+)\\b`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A participant's reading: one read at a time, whether the poll loop or a writer checking its own text. */
class Reader {
  readonly arrivals: Arrival[] = [];
  /** Every text the conversation holds since the start, the participant's own included. */
  readonly texts = new Set<string>();
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly participant: Participant,
    private readonly pattern: RegExp,
    private readonly trouble: (what: string) => void,
  ) {}

  /** Reads what is new; resolves once the read is done (failed reads are noted and resolve too). */
  read(): Promise<boolean> {
    const next = this.reading.then(async () => {
      const read = await this.participant.readNew();
      const at = Date.now();
      for (const { id, body } of read) {
        this.texts.add(body);
        const match = this.pattern.exec(body);
        if (match === null) continue;
        const from = match[1] as Network;
        if (from !== this.participant.network) this.arrivals.push({ from, seq: Number(match[2]), id, at });
      }
    });
    this.reading = next.catch(() => undefined);
    return next.then(
      () => true,
      (error: unknown) => {
        this.trouble(`${this.participant.network} read failed: ${firstLine(error)}`);
        return false;
      },
    );
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]?.slice(0, 160) ?? "";
}

/** A gate a writer waits at while its server is away. */
class Gate {
  private open: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;
  /** The message in hand, until its server has it. */
  inHand: Promise<void> = Promise.resolve();
  /** Messages still to write without a pause. */
  hurried = 0;

  close(): void {
    if (this.release !== undefined) return;
    this.open = new Promise((resolve) => (this.release = resolve));
  }

  reopen(): void {
    this.release?.();
    this.release = undefined;
  }

  passed(): Promise<void> {
    return this.open;
  }
}

/**
 * Runs the stream through `participants` and strikes with `fault` at options.faultAtMs; resolves once
 * every message sent has arrived everywhere it should or the drain timeout passed, and a few seconds more,
 * for a late copy to show.
 */
export async function runStream(
  participants: readonly Participant[],
  options: StreamOptions,
  fault: (control: StreamControl) => Promise<void>,
): Promise<StreamRecord> {
  const run = randomBytes(4).toString("hex");
  const pattern = streamPattern(run);
  const troubles = new Map<string, number>();
  const trouble = (what: string): void => {
    if (!troubles.has(what)) process.stderr.write(`chaos: ${what}\n`);
    troubles.set(what, (troubles.get(what) ?? 0) + 1);
  };
  const readers = new Map(participants.map((p) => [p.network, new Reader(p, pattern, trouble)]));
  const gates = new Map(participants.map((p) => [p.network, new Gate()]));
  const sent = new Map<Network, Map<number, number>>(participants.map((p) => [p.network, new Map()]));

  let reading = true;
  const polls = [...readers.values()].map(async (reader) => {
    while (reading) {
      await reader.read();
      await sleep(POLL_MS);
    }
  });

  /** Writes one message, however often it takes: a write that failed midway is looked for before a retry. */
  async function write(participant: Participant, text: string): Promise<void> {
    const reader = readers.get(participant.network);
    for (;;) {
      try {
        await participant.send(text);
        return;
      } catch (error) {
        trouble(`${participant.network} write failed: ${firstLine(error)}`);
      }
      await participant.ready();
      while (reader !== undefined && !(await reader.read())) await sleep(POLL_MS);
      if (reader?.texts.has(text) === true) return;
    }
  }

  const started = Date.now();
  const writers = participants.map(async (participant) => {
    const gate = gates.get(participant.network) ?? new Gate();
    const mine = sent.get(participant.network) ?? new Map<number, number>();
    for (let seq = 1; seq <= options.messagesPerSender; seq++) {
      await gate.passed();
      const writing = write(participant, `chaos ${run} ${participant.network} ${seq}`);
      gate.inHand = writing;
      await writing;
      mine.set(seq, Date.now());
      if (gate.hurried > 0) gate.hurried -= 1;
      else await sleep(options.intervalMs);
    }
  });

  const control: StreamControl = {
    holdSending: async (network) => {
      const gate = gates.get(network);
      gate?.close();
      await gate?.inHand;
    },
    resumeSending: (network) => {
      const gate = gates.get(network);
      const participant = participants.find((p) => p.network === network);
      void (participant?.ready() ?? Promise.resolve()).then(() => gate?.reopen());
    },
    hurry: (network, count) => {
      const gate = gates.get(network);
      if (gate !== undefined) gate.hurried = count;
    },
  };
  const striking = (async () => {
    await sleep(Math.max(0, started + options.faultAtMs - Date.now()));
    const faultStartedAt = Date.now();
    await fault(control);
    return { faultStartedAt, faultEndedAt: Date.now() };
  })();

  const [{ faultStartedAt, faultEndedAt }] = await Promise.all([striking, Promise.all(writers)]);

  const expected = (receiver: Network): number =>
    [...sent].filter(([from]) => from !== receiver).reduce((sum, [, seqs]) => sum + seqs.size, 0);
  const complete = (): boolean =>
    [...readers].every(
      ([network, reader]) =>
        new Set(reader.arrivals.map((a) => `${a.from} ${a.seq}`)).size >= expected(network),
    );
  const deadline = Date.now() + options.drainTimeoutMs;
  while (!complete() && Date.now() < deadline) await sleep(POLL_MS);
  // A copy posted twice may come a moment after the first.
  await sleep(3000);
  reading = false;
  await Promise.all(polls);
  await Promise.all([...readers.values()].map((reader) => reader.read()));

  // The count rests on the conversations as read back from their ends; the reading along the way gives the
  // times. Where the two disagree, the reader is suspect, and it is said.
  const readBack = Date.now();
  const arrivals = new Map<Network, Arrival[]>();
  for (const participant of participants) {
    const along = readers.get(participant.network)?.arrivals ?? [];
    const history = await readHistory(participant, trouble);
    if (history === undefined) {
      arrivals.set(participant.network, along);
      continue;
    }
    const firstSeen = new Map<string, number>();
    for (const arrival of along) if (!firstSeen.has(arrival.id)) firstSeen.set(arrival.id, arrival.at);
    const final: Arrival[] = [];
    for (const { id, body, storedAt } of history) {
      const match = pattern.exec(body);
      const from = match?.[1] as Network | undefined;
      if (match === null || from === undefined || from === participant.network) continue;
      const at = firstSeen.get(id);
      if (at === undefined) trouble(`${participant.network} found "${body}" only reading back`);
      // Missed along the way: it arrived when its server says it stored it.
      final.push({ from, seq: Number(match[2]), id, at: at ?? storedAt ?? readBack });
    }
    const kept = new Set(final.map((a) => a.id));
    for (const arrival of along)
      if (!kept.has(arrival.id))
        trouble(`${participant.network} read ${arrival.from} ${arrival.seq} along the way, not reading back`);
    arrivals.set(participant.network, final);
  }

  return { run, sent, arrivals, faultStartedAt, faultEndedAt, troubles };
}

/** Messages read back at the end: far more than a stream and its warm-up put in one conversation. */
const HISTORY = 1000;

/** The participant's conversation read back; undefined (said) if its server does not answer in 30 s. */
async function readHistory(
  participant: Participant,
  trouble: (what: string) => void,
): Promise<Read[] | undefined> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await participant.history(HISTORY);
    } catch (error) {
      if (Date.now() > deadline) {
        trouble(`${participant.network} could not read back: ${firstLine(error)}`);
        return undefined;
      }
      await sleep(1000);
    }
  }
}

/**
 * Resolves once a message from each participant has reached each other one: every bridge is in its
 * conversation and every route carries. Writes again every 15 s while some route has not carried yet (a
 * bridge not yet in its room does not bridge what was written before it came).
 */
export async function warmUp(participants: readonly Participant[], timeoutMs = 120_000): Promise<void> {
  const run = randomBytes(4).toString("hex");
  const pattern = new RegExp(`warm-up ${run} (xmpp|matrix|stashcat) \\d+`);
  const missing = new Set(
    participants.flatMap((from) =>
      participants.filter((to) => to !== from).map((to) => `${from.network}>${to.network}`),
    ),
  );
  const deadline = Date.now() + timeoutMs;
  for (let round = 1; missing.size > 0; round++) {
    if (Date.now() > deadline)
      throw new Error(`warm-up: no message carried on ${[...missing].join(", ")} in ${timeoutMs} ms`);
    for (const from of participants)
      if ([...missing].some((route) => route.startsWith(`${from.network}>`)))
        await from.send(`warm-up ${run} ${from.network} ${round}`);
    const roundEnds = Date.now() + 15_000;
    while (missing.size > 0 && Date.now() < roundEnds) {
      for (const to of participants) {
        for (const { body } of await to.readNew().catch(() => [])) {
          const from = pattern.exec(body)?.[1];
          if (from !== undefined) missing.delete(`${from}>${to.network}`);
        }
      }
      await sleep(POLL_MS);
    }
  }
}
