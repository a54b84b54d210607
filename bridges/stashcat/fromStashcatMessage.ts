/** A Stashcat message, read and decrypted, as a normalised event. */
import type { Attachment, NormalisedEvent } from "../../schemas/types.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { markdownToEventHtml } from "./markdown.js";
import type { StashcatMessage } from "./messages.js";

const NETWORK = "stashcat";

type MessageFacts = Pick<StashcatMessage, "id" | "senderId" | "senderName" | "time">;

/** What every event about a Stashcat message shares: where it was written, by whom, when. */
export function eventBaseOf(
  message: MessageFacts,
  instance: string,
  conversation: string,
): Pick<NormalisedEvent, "specVersion" | "source" | "sender" | "timestamp"> {
  return {
    specVersion: "1",
    source: { network: NETWORK, instance, conversation, messageId: String(message.id) },
    sender: { userId: String(message.senderId), displayName: message.senderName },
    timestamp: new Date(message.time * 1000).toISOString(),
  };
}

export interface MessageParts {
  id: string;
  instance: string;
  conversation: string;
  /** The text, decrypted where it was encrypted. */
  text: string;
  attachments: Attachment[];
  /** The event id of the message it answers, where the bridge knows it. */
  replyTo?: string;
}

export function fromStashcatMessage(
  message: MessageFacts & Pick<StashcatMessage, "markdown">,
  parts: MessageParts,
): NormalisedEvent {
  const { text, attachments, replyTo } = parts;
  if (text === "" && attachments.length === 0)
    throw new PermanentError("FG_NATIVE_INVALID", "the message has neither text nor files");
  return {
    ...eventBaseOf(message, parts.instance, parts.conversation),
    id: parts.id,
    type: "message.created",
    content: {
      ...(text === "" ? {} : { body: text }),
      ...(message.markdown && text !== "" ? { html: markdownToEventHtml(text) } : {}),
      ...(attachments.length === 0 ? {} : { attachments }),
    },
    ...(replyTo === undefined ? {} : { relations: { replyTo } }),
  };
}
