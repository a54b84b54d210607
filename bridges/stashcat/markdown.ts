/**
 * Stashcat's formatted text is markdown (`metainfo: {"style":"md"}`); the normalised event carries HTML.
 * markdown-it renders it with raw HTML off, and the event's sanitiser keeps only the subset.
 */
import MarkdownIt from "markdown-it";
import { toEventHtml } from "../kit/eventHtml.js";

const renderer = new MarkdownIt({ html: false, linkify: true, breaks: true });

export function markdownToEventHtml(markdown: string): string {
  return toEventHtml(renderer.render(markdown)).trim();
}
