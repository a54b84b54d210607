/**
 * The attachment loop every adapter runs on delivery: each file of the event is carried into the network by
 * `carry` (fetch, upload, share), in order. A file that cannot be carried for good (too large, refused, its
 * host not allowed) is left out and named, so that the message can say so; a transient failure fails the
 * whole delivery, which is then retried before anything of it was posted.
 */
import type { Logger } from "pino";
import type { Attachment, NormalisedEvent } from "../../schemas/types.js";
import { isTransient } from "../../schemas/contract/errors.js";

export interface CarriedAttachments<T> {
  carried: { attachment: Attachment; result: T }[];
  notCarried: { attachment: Attachment; reason: string }[];
}

export async function carryAttachments<T>(
  event: NormalisedEvent,
  carry: (attachment: Attachment) => Promise<T>,
  log: Logger,
  network: string,
): Promise<CarriedAttachments<T>> {
  const carried: CarriedAttachments<T>["carried"] = [];
  const notCarried: CarriedAttachments<T>["notCarried"] = [];
  for (const attachment of event.content?.attachments ?? []) {
    try {
      carried.push({ attachment, result: await carry(attachment) });
    } catch (error) {
      if (isTransient(error)) throw error;
      log.warn({ err: error, eventId: event.id, file: attachment.name }, `file not carried to ${network}`);
      notCarried.push({ attachment, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  return { carried, notCarried };
}
