/**
 * XML 1.0 allows only some characters in a document (its Char production). A stanza with any other makes the
 * server close the stream: the stanza is lost, and every one after it waits for the reconnection. Text from
 * other networks may hold anything, so everything the bridge writes passes through here.
 */

/**
 * What XML 1.0 forbids: C0 controls but tab, line feed and carriage return; U+FFFE and U+FFFF; and, in this
 * Unicode-aware pattern, a surrogate that is not half of a pair.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uD800-\uDFFF\uFFFE\uFFFF]/gu;

/**
 * `text` with every character XML 1.0 forbids replaced by U+FFFD: readers see that something was there, and
 * positions counted in code points (a reply's fallback, XEP-0428) stay where they were.
 */
export function xmlCharactersOnly(text: string): string {
  return text.replace(FORBIDDEN, "\uFFFD");
}
