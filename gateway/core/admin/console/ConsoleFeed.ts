/**
 * What the console shows besides the links themselves, read from the bus as any auditor would: the tail of
 * the audit stream (recent decisions, and from them each link's last message each way) and the dead letters.
 * Only metadata is kept: an audit record carries no content, and a dead letter's payload is held only to be
 * published again on retry, never shown. Everything is bounded; after a restart the decisions start empty
 * (the audit stream is followed from new), while dead letters, which are few, are read from the start.
 */
import type {
  AuditRecord,
  DeadLetter,
  Delivery,
  Endpoint,
  NormalisedEvent,
} from "../../../../schemas/types.js";
import { validateAuditBatch, validateDeadLetter } from "../../../../schemas/contract/schemas.js";
import { PermanentError } from "../../../../schemas/contract/errors.js";
import { subjects } from "../../../../schemas/contract/subjects.js";
import type { Bus, Subscription } from "../../../platform/bus/Bus.js";
import { type ConversationRef, conversationKey } from "../../../platform/stores/LinkStore.js";
import type { Logger } from "../../../platform/log.js";

/** How many audit records and dead letters the console keeps. */
export const RECENT_DECISIONS = 1000;
export const RECENT_DEAD_LETTERS = 200;
/** Links whose last messages are kept; the least recently active is forgotten past this. */
const ACTIVE_LINKS = 10_000;

/** The last event one direction of a link carried (from one conversation to another). */
export interface DirectionActivity {
  from: string;
  to: string;
  at: string;
  decision: AuditRecord["decision"];
  reason: AuditRecord["reason"];
}

/** A dead letter as the console shows it: where and why, with what it was about, never its payload. */
export interface DeadLetterEntry {
  seq: number;
  origin: string;
  subject: string;
  code: string;
  message: string;
  failedAt: string;
  deliveryCount?: number;
  /** The conversations the letter's message was from or for, when it was an event or delivery. */
  conversations: ConversationRef[];
  retriedAt?: string;
}

/** Only the bus's own message subjects are published again; a letter naming anything else is not retried. */
const retriable = /^fedgate\.v1\.(inbound|outbound)\.[a-z0-9-]+\.[a-z0-9-]+(\.[0-9]+)?$/;

function conversationsOf(letter: DeadLetter): ConversationRef[] {
  if (letter.payloadEncoding !== "utf8") return [];
  try {
    const value = JSON.parse(letter.payload) as Partial<NormalisedEvent & Delivery>;
    const refs = [value.source, value.target, value.event?.source].filter(
      (r): r is Endpoint => typeof r?.network === "string" && typeof r.conversation === "string",
    );
    return refs.map(({ network, instance, conversation }) => ({ network, instance, conversation }));
  } catch {
    return [];
  }
}

export class ConsoleFeed {
  private readonly decisions: AuditRecord[] = [];
  private readonly activity = new Map<string, Map<string, DirectionActivity>>();
  private readonly letters = new Map<number, { entry: DeadLetterEntry; letter: DeadLetter }>();
  private readonly subscriptions: Subscription[] = [];

  private constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  static async start(bus: Bus, log: Logger): Promise<ConsoleFeed> {
    const feed = new ConsoleFeed(bus, log.child({ component: "console" }));
    feed.subscriptions.push(
      await bus.follow("FEDGATE_AUDIT", subjects.auditAll, "new", (m) => {
        feed.readAudit(m.data);
      }),
      await bus.follow("FEDGATE_DEADLETTER", subjects.deadLetterAll, "start", (m) => {
        feed.readDeadLetter(m.seq, m.data);
      }),
    );
    return feed;
  }

  async stop(): Promise<void> {
    await Promise.all(this.subscriptions.map((s) => s.stop()));
  }

  /** The newest decisions first, up to RECENT_DECISIONS. */
  recentDecisions(): readonly AuditRecord[] {
    return [...this.decisions].reverse();
  }

  /** Each direction's last event of a link, by "from → to". */
  activityOf(linkId: string): DirectionActivity[] {
    return [...(this.activity.get(linkId)?.values() ?? [])];
  }

  /** The newest dead letters first. */
  deadLetters(): DeadLetterEntry[] {
    return [...this.letters.values()].map((l) => l.entry).reverse();
  }

  /** Publishes a dead letter's message again where it was read from, once. Throws FG_EVENT_INVALID. */
  async retry(seq: number): Promise<DeadLetterEntry> {
    const held = this.letters.get(seq);
    if (held === undefined)
      throw new PermanentError("FG_EVENT_INVALID", `no dead letter ${String(seq)} is held`);
    const { letter, entry } = held;
    // Once: should it fail again, it comes back as a dead letter of its own.
    if (entry.retriedAt !== undefined)
      throw new PermanentError("FG_EVENT_INVALID", `dead letter ${String(seq)} was retried already`);
    if (!retriable.test(letter.subject))
      throw new PermanentError(
        "FG_EVENT_INVALID",
        `dead letter ${String(seq)} was not read from the bus; it cannot be retried`,
      );
    const payload =
      letter.payloadEncoding === "base64"
        ? Buffer.from(letter.payload, "base64")
        : Buffer.from(letter.payload, "utf8");
    // No message id: the original's is in the stream's duplicate window, and would make the retry a no-op.
    await this.bus.publish(letter.subject, payload);
    entry.retriedAt = new Date().toISOString();
    this.log.info({ seq, subject: letter.subject, code: entry.code }, "dead letter retried from the console");
    return entry;
  }

  private readAudit(data: Uint8Array): void {
    let records: AuditRecord[];
    try {
      records = validateAuditBatch(JSON.parse(Buffer.from(data).toString("utf8"))).records;
    } catch (error) {
      this.log.warn({ err: error }, "unreadable audit batch; the console skips it");
      return;
    }
    for (const record of records) {
      this.decisions.push(record);
      if (this.decisions.length > RECENT_DECISIONS) this.decisions.shift();
      if (record.linkId === undefined || record.target === undefined) continue;
      const from = conversationKey(record.source);
      const to = conversationKey(record.target);
      let directions = this.activity.get(record.linkId);
      // Re-inserting keeps the map in order of activity, so the first key is the least recently active.
      this.activity.delete(record.linkId);
      directions ??= new Map();
      this.activity.set(record.linkId, directions);
      directions.set(`${from}\n${to}`, {
        from,
        to,
        at: record.decidedAt,
        decision: record.decision,
        reason: record.reason,
      });
      if (this.activity.size > ACTIVE_LINKS)
        this.activity.delete(this.activity.keys().next().value as string);
    }
  }

  private readDeadLetter(seq: number, data: Uint8Array): void {
    let letter: DeadLetter;
    try {
      letter = validateDeadLetter(JSON.parse(Buffer.from(data).toString("utf8")));
    } catch (error) {
      this.log.warn({ err: error, seq }, "unreadable dead letter; the console skips it");
      return;
    }
    const entry: DeadLetterEntry = {
      seq,
      origin: letter.origin,
      subject: letter.subject,
      code: letter.reason.code,
      message: letter.reason.message,
      failedAt: letter.failedAt,
      ...(letter.deliveryCount === undefined ? {} : { deliveryCount: letter.deliveryCount }),
      conversations: conversationsOf(letter),
    };
    this.letters.set(seq, { entry, letter });
    if (this.letters.size > RECENT_DEAD_LETTERS)
      this.letters.delete(this.letters.keys().next().value as number);
  }
}
