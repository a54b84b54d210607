/**
 * HTML built from templates in which every interpolated value is escaped unless it is already Html: link ids,
 * agency names and conversation names come from anyone who can name a room, so nothing reaches a page raw.
 */
import { escapeHtml } from "../../../platform/escapeHtml.js";

/** Markup that is safe as it is: built by `html` or `join`, never from a plain string. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | undefined | readonly Html[];

function render(value: Value): string {
  if (value === undefined) return "";
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map((v: Html) => v.text).join("");
  return escapeHtml(String(value));
}

/** A template tag: the literal parts are trusted markup, every value is escaped (arrays of Html joined). */
export function html(parts: TemplateStringsArray, ...values: Value[]): Html {
  let text = parts[0] ?? "";
  values.forEach((value, i) => {
    text += render(value) + (parts[i + 1] ?? "");
  });
  return new Html(text);
}
