/**
 * The normalised event's HTML subset, through sanitize-html: a maintained parser-based sanitiser, as a
 * hand-written one is where script injection slips through. Every bridge cleans HTML it reads from its
 * network, and HTML from the bus before it writes it: the bus is not trusted either.
 */
import sanitizeHtml from "sanitize-html";

/** The subset event.schema.json allows in content.html. */
const allowedTags = [
  "b",
  "strong",
  "i",
  "em",
  "u",
  "s",
  "del",
  "code",
  "pre",
  "blockquote",
  "p",
  "br",
  "ul",
  "ol",
  "li",
  "a",
];

const options: sanitizeHtml.IOptions = {
  allowedTags,
  allowedAttributes: { a: ["href"] },
  allowedSchemes: ["http", "https", "mailto"],
  allowedSchemesAppliedToAttributes: ["href"],
  allowProtocolRelative: false,
  // Tags outside the subset go, their text stays; these lose their text too. sanitize-html's own list plus
  // <mx-reply>, the quote of the message replied to that older clients put before a reply.
  nonTextTags: ["script", "style", "textarea", "option", "xmp", "noscript", "mx-reply"],
  // Headings (which Matrix clients make from Markdown) and the old <strike> keep their meaning this way.
  transformTags: {
    h1: "p",
    h2: "p",
    h3: "p",
    h4: "p",
    h5: "p",
    h6: "p",
    strike: "s",
  },
};

/** HTML reduced to the event's subset (headings become paragraphs, a Matrix reply's quote goes). */
export function toEventHtml(html: string): string {
  return sanitizeHtml(html, options);
}
