/**
 * What happens when a handler fails, shared by both Bus implementations and every consumer.
 *
 * Transient errors are retried in place, not nak'ed: a nak lets the next message of the partition overtake
 * the failed one, which would break per-conversation order. While retrying, progress() keeps the ack wait
 * from expiring. Permanent errors, and transient ones that outlast every attempt, go to the dead-letter
 * subject with their reason, and the message is terminated so it is never redelivered.
 */
import type { Logger } from "pino";
import type { DeadLetter } from "../../../schemas/types.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { errorCode, isTransient } from "../../../schemas/contract/errors.js";
import type { BusMessage, MessageHandler, PublishOptions, PublishReceipt } from "./Bus.js";
import { counter } from "../telemetry.js";

export interface ConsumePolicy {
  /** Attempts for a transiently failing message before it is dead-lettered. */
  maxAttempts: number;
  /** Who gives up, as named in the dead-letter subject: "core" or a bridge's name. */
  origin: string;
  log: Logger;
  /** Delay before attempt n+1, in milliseconds. */
  backoffMs?: (attempt: number) => number;
}

/** settled: acknowledge or terminate; unsettled: leave it for redelivery (the dead letter could not be stored, or the consumer stops). */
export type Outcome = "ack" | "term" | "unsettled";

const deadLetters = counter("fedgate.dead_letters", {
  description: "Messages given up on and dead-lettered, by who gave up and the error code",
});

/** Counts a dead letter once it is stored. */
export function countDeadLetter(letter: DeadLetter): void {
  deadLetters.add(1, { origin: letter.origin, code: letter.reason.code });
}

const defaultBackoff = (attempt: number): number => Math.min(100 * 2 ** (attempt - 1), 5000);

export function toDeadLetter(origin: string, message: BusMessage, error: unknown): DeadLetter {
  return deadLetterOf(origin, message.subject, message.data, error, message.deliveryCount);
}

/** A dead letter for `data`, read from `subject` (a bus subject, or where an adapter read native input). */
export function deadLetterOf(
  origin: string,
  subject: string,
  data: Uint8Array,
  error: unknown,
  deliveryCount?: number,
): DeadLetter {
  const text = Buffer.from(data).toString("utf8");
  const isUtf8 = Buffer.from(text, "utf8").equals(Buffer.from(data));
  return {
    specVersion: "1",
    origin,
    subject,
    reason: { code: errorCode(error), message: error instanceof Error ? error.message : String(error) },
    ...(deliveryCount === undefined ? {} : { deliveryCount }),
    payload: isUtf8 ? text : Buffer.from(data).toString("base64"),
    payloadEncoding: isUtf8 ? "utf8" : "base64",
    failedAt: new Date().toISOString(),
  };
}

export async function runWithPolicy(
  message: BusMessage,
  handler: MessageHandler,
  progress: () => void,
  publish: (subject: string, data: Uint8Array, options?: PublishOptions) => Promise<PublishReceipt>,
  policy: ConsumePolicy,
  /** Whether the consumer is stopping: a transient failure then leaves the message for the next consumer. */
  stopping: () => boolean = () => false,
): Promise<Outcome> {
  const backoff = policy.backoffMs ?? defaultBackoff;
  for (let attempt = 1; ; attempt++) {
    try {
      await handler(message, progress);
      return "ack";
    } catch (error) {
      const fields = {
        err: error,
        code: errorCode(error),
        subject: message.subject,
        seq: message.seq,
        attempt,
      };
      // Retrying in place would hold the stop up for as long as the failure lasts (a partner away for an hour).
      if (isTransient(error) && stopping()) {
        policy.log.debug(fields, "transient failure while stopping; left for redelivery");
        return "unsettled";
      }
      if (isTransient(error) && attempt < policy.maxAttempts) {
        // Attempts 1, 2, 4, 8, …: a partner away for an hour is a few lines in the log, not thousands.
        if ((attempt & (attempt - 1)) === 0) policy.log.warn(fields, "transient failure, retrying");
        else policy.log.debug(fields, "transient failure, retrying");
        await new Promise((resolve) => setTimeout(resolve, backoff(attempt)));
        progress();
        continue;
      }
      policy.log.error(fields, "message cannot be processed; dead-lettering it");
      try {
        const letter = toDeadLetter(policy.origin, message, error);
        await publish(subjects.deadLetter(policy.origin), new TextEncoder().encode(JSON.stringify(letter)), {
          msgId: `${policy.origin}.${message.subject}.${message.seq}`,
        });
        countDeadLetter(letter);
        return "term";
      } catch (publishError) {
        policy.log.error(
          { err: publishError },
          "dead letter could not be stored; leaving message for redelivery",
        );
        return "unsettled";
      }
    }
  }
}
