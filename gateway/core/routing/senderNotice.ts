/**
 * The notice that tells a sender, in their own conversation and in reply to their message, which agencies did
 * not get it and why: sent by the router for denials and by DeliveryFailures for deliveries that failed for good.
 */
import { createHash } from "node:crypto";
import type { Delivery, Endpoint, NormalisedEvent } from "../../../schemas/types.js";
import type { Bus } from "../../platform/bus/Bus.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { encodeJson } from "../../platform/bus/KeyValueStore.js";
import { isFederated } from "../federation/FederationGate.js";
import type { PolicyEngine } from "../policy/PolicyEngine.js";

/** Event types a person wrote: what becomes of these is explained to the sender. */
const PERSONAL_TYPES = new Set<NormalisedEvent["type"]>([
  "message.created",
  "message.edited",
  "reaction.added",
]);

/**
 * Whether the sender of `event`, written in `source`, is told what became of it. Only for what a person wrote
 * (so never for a notice: no notice answers a notice). A partner gateway's sender is not told: this gateway's
 * refusals are its own to audit, and a notice sent across would reach the partner's rooms as an event of the
 * conversation.
 */
export function tellsSender(
  event: Pick<NormalisedEvent, "type">,
  source: Pick<Endpoint, "network">,
): boolean {
  return PERSONAL_TYPES.has(event.type) && !isFederated(source);
}

/** One line of a notice: "- <agency's name>: <why> (<code>)". */
export function noticeLine(policy: PolicyEngine, target: Endpoint, why: string, code: string): string {
  return `- ${policy.agency(target.agency)?.name ?? target.agency}: ${why} (${code})`;
}

/**
 * Publishes `text` as a notice to the sender's conversation `source`, in reply to `event`. `key` names what the
 * notice is about: it makes the notice's id, so the same notice sent again (after a crash, or by another
 * replica) is stored once. `headers` carry the trace context of the span that decided it.
 */
export async function tellSender(
  bus: Bus,
  event: NormalisedEvent,
  source: Endpoint,
  text: string,
  key: string,
  headers?: Record<string, string>,
): Promise<void> {
  const noticeId = createHash("sha256").update(key).digest("hex").slice(0, 32);
  const notice: Delivery = {
    specVersion: "1",
    id: noticeId,
    event: {
      specVersion: "1",
      id: noticeId,
      type: "notice",
      source: { network: source.network, instance: source.instance, conversation: source.conversation },
      sender: { userId: "fedgate", displayName: "fedgate" },
      content: { body: text },
      relations: { replyTo: event.id },
      timestamp: new Date().toISOString(),
      ...(event.trace === undefined ? {} : { trace: event.trace }),
    },
    target: source,
  };
  await bus.publish(subjects.outbound(source.network, source.instance), encodeJson(notice), {
    msgId: notice.id,
    ...(headers === undefined ? {} : { headers }),
  });
}
