/** Recent native messages, remembered for what a later delivery needs of them. */
import { BoundedMap } from "../kit/BoundedMap.js";
import { NS } from "./namespaces.js";
import type { Refusal } from "./refusals.js";
import { withoutReplyFallback } from "./toNormalisedEvent.js";
import type { Quote } from "./toStanza.js";
import type { XmlElement } from "./XmppComponent.js";

/**
 * How many recent messages the bridge remembers: who sent them (to refuse them to their sender if policy
 * denies) and their text (for the quote a reply to them carries). Memory only: after a restart a denial is
 * still said in the conversation, and a reply still names what it answers.
 */
const RECENT_MESSAGES = 2000;

export class RecentMessages {
  /** Recent native messages by event id: where to send a stanza error if the gateway refuses them. */
  private readonly senders = new BoundedMap<string, { refusal: Refusal; id: string }>(RECENT_MESSAGES);
  /** Recent texts by "<conversation> <the id replies use>", for the quote a reply carries (XEP-0461). */
  private readonly texts = new BoundedMap<string, Quote>(RECENT_MESSAGES);

  /** Keeps a message's text (without its own reply quote) for a reply to it to quote. */
  rememberText(conversation: string, id: string, stanza: XmlElement, author: string, jid: string): void {
    const body = stanza.getChildText("body");
    if (body === null || stanza.getChild("replace", NS.correction) !== undefined) return;
    this.texts.set(`${conversation} ${id}`, { author, jid, text: withoutReplyFallback(stanza, body) });
  }

  rememberSender(eventId: string, refusal: Refusal, id: string | undefined): void {
    if (id === undefined) return;
    this.senders.set(eventId, { refusal, id });
  }

  /** Where to refuse the native message the event `eventId` was published for, if it is recent. */
  senderOf(eventId: string): { refusal: Refusal; id: string } | undefined {
    return this.senders.get(eventId);
  }

  /** The text of the recent message that replies in `conversation` name `id`. */
  textOf(conversation: string, id: string): Quote | undefined {
    return this.texts.get(`${conversation} ${id}`);
  }
}
