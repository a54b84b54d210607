/**
 * An edit of a message fedgate no longer knows (its ids and ledger entry are past the message horizon, or it
 * never saw it) travels as a new message from the editor, its text marked as an edit of an earlier message.
 * There is nothing left to edit, and nobody can tell a forgotten original from a made-up id, so it must get no
 * more than a plain message would: readers see the new text and that it stands for something older. The core
 * and every adapter mark it the same way.
 */
import type { EventContent } from "../types.js";

/** What readers see before the text. */
export const EARLIER_EDIT_MARK = "(edit of an earlier message)";

/** event.schema.json: content.body and content.html maxLength, in code points as the validator counts. */
const MAX_BODY = 65_536;
const MAX_HTML = 131_072;

function cut(text: string, length: number): string {
  const chars = Array.from(text);
  return chars.length <= length ? text : chars.slice(0, length).join("");
}

/**
 * The content of an edit, as the new message that carries it: its text marked, and still within the schema's
 * limits (the text is cut, never the mark; formatted text that no longer fits is left out, the plain text
 * says the same).
 */
export function asEarlierEdit(content: EventContent | undefined): EventContent {
  const body = cut(`${EARLIER_EDIT_MARK} ${content?.body ?? ""}`, MAX_BODY);
  const html = content?.html === undefined ? undefined : `<em>${EARLIER_EDIT_MARK}</em> ${content.html}`;
  return {
    body,
    ...(html !== undefined && Array.from(html).length <= MAX_HTML ? { html } : {}),
  };
}
