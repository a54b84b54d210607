/**
 * Text from one network made safe for every other: what XML 1.0 cannot carry goes (one U+0007 in a body made
 * Prosody close the bridge's stream, and every delivery stalled behind it), and names lose what could make
 * them read as someone else's ("Name (Agency)" with a right-to-left override, a line break, a second name).
 * Applied to every event a bridge publishes and every delivery it receives: the bus is not trusted either.
 */
import type { Delivery, EventContent, EventSender, NormalisedEvent } from "../../schemas/types.js";
import { safeFileName } from "./fetchAttachment.js";

/**
 * What XML 1.0 forbids (its Char production): C0 controls but tab, line feed and carriage return; U+FFFE and
 * U+FFFF; and, in this Unicode-aware pattern, a surrogate that is not half of a pair.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/gu;
/** Controls of every kind, and the marks and overrides that change the direction text reads in. */
const NAME_HIDING = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]|[\u2028\u2029]/gu;
/** event.schema.json: sender.displayName maxLength, in code points as the validator counts them. */
const MAX_NAME_LENGTH = 256;

/**
 * The text without what XML 1.0 forbids, or with each such character replaced one for one (U+FFFD where
 * positions counted in code points must stay where they were).
 */
export function withoutXmlForbidden(text: string, replacement = ""): string {
  return text.replace(XML_FORBIDDEN, replacement);
}

/**
 * A person's or agency's name on one line, without controls or direction changes, at most 256 code points;
 * undefined when nothing is left.
 */
export function cleanName(name: string): string | undefined {
  const cleaned = withoutXmlForbidden(name.replace(/[\t\n\r\u2028\u2029]+/g, " "))
    .replace(NAME_HIDING, "")
    .replace(/\s{2,}/g, " ")
    .trim();
  if (cleaned === "") return undefined;
  const chars = Array.from(cleaned);
  return chars.length <= MAX_NAME_LENGTH ? cleaned : chars.slice(0, MAX_NAME_LENGTH).join("").trimEnd();
}

function cleanSender(sender: EventSender): EventSender {
  const { displayName, ...rest } = sender;
  const name = displayName === undefined ? undefined : cleanName(displayName);
  return name === undefined ? rest : { ...rest, displayName: name };
}

function cleanContent(content: EventContent): EventContent {
  const { body, html, reaction, attachments } = content;
  return {
    ...content,
    ...(body === undefined ? {} : { body: withoutXmlForbidden(body) }),
    ...(html === undefined ? {} : { html: withoutXmlForbidden(html) }),
    ...(reaction === undefined ? {} : { reaction: withoutXmlForbidden(reaction) }),
    ...(attachments === undefined
      ? {}
      : { attachments: attachments.map((a) => ({ ...a, name: safeFileName(a.name) })) }),
  };
}

/** The event with its text and names cleaned; ids and everything else as they were. */
export function cleanEvent(event: NormalisedEvent): NormalisedEvent {
  return {
    ...event,
    sender: cleanSender(event.sender),
    ...(event.content === undefined ? {} : { content: cleanContent(event.content) }),
  };
}

/** The delivery with its event and sender agency's name cleaned. */
export function cleanDelivery(delivery: Delivery): Delivery {
  const { senderAgency } = delivery;
  return {
    ...delivery,
    event: cleanEvent(delivery.event),
    ...(senderAgency === undefined
      ? {}
      : { senderAgency: { ...senderAgency, name: cleanName(senderAgency.name) ?? senderAgency.id } }),
  };
}
