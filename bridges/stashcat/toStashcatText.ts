/**
 * A delivery as the text of a Stashcat message: a bold "Name (Agency):" header (Stashcat has no puppets; the
 * service account posts for everyone), the marking's label, "(corrected)" for an edit, the text, and a note
 * for each file not carried. Markdown for the header only; everything after it shows as written.
 */
import type { Delivery } from "../../schemas/types.js";
import { puppetName } from "../kit/puppetName.js";

export interface StashcatTextOptions {
  /** The gateway's own notice (a denial explained), said as fedgate rather than as a person. */
  fromGateway: boolean;
  /** Names of the files that could not be carried. */
  missingFiles: readonly string[];
}

export function toStashcatText(delivery: Delivery, options: StashcatTextOptions): string {
  const { event } = delivery;
  const who = options.fromGateway ? "fedgate" : puppetName(delivery);
  const marking = delivery.marking === undefined ? "" : `[${delivery.marking.label}] `;
  const edited = event.type === "message.edited" ? "(corrected) " : "";
  const missing = options.missingFiles.map((name) => `\n[file not carried: ${name}]`).join("");
  const said = escapeMarkdown(`${marking}${edited}${event.content?.body ?? ""}${missing}`);
  return `**${escapeMarkdown(who)}:** ${said}`;
}

/**
 * Plain text as markdown that shows it as written: the marks that make emphasis, links, code, tables and
 * headings are escaped everywhere, and those that start lists, rules and underlined headings at a line's
 * start, so that no name or body can add a bold "Name (Agency):" header of its own or a link whose text hides
 * where it goes. CommonMark lets any ASCII punctuation be escaped with a backslash.
 */
function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_[\]<>~|#]/g, "\\$&")
    .replace(/^(\s*)([-+=])/gm, "$1\\$2")
    .replace(/^(\s*\d+)([.)])/gm, "$1\\$2");
}
