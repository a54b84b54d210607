/**
 * Links a bridge serves so that other bridges can fetch a file its own network keeps behind a login
 * (Matrix's authenticated media, Stashcat's encrypted files): capability URLs, signed with a key of the
 * bridge's own, so that only links the bridge handed out are served. The signature covers the file, the
 * name it downloads as (a link holder cannot make a PDF download as a program) and an expiry, so that a
 * link that leaks (a log, a forwarded event) stops working.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { safeFileName } from "./fetchAttachment.js";

/** An HMAC-SHA256 in unpadded base64url. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;
/** Seconds since the epoch, as a link's expiry. */
const EXPIRY = /^[0-9]{1,12}$/;

/** What a link's signature covers, unambiguous whatever the name holds: the file, its name and the expiry. */
function signedText(subject: string, name: string, expires: number): string {
  return JSON.stringify([subject, name, expires]);
}

function hmac(key: Buffer | string, text: string): Buffer {
  return createHmac("sha256", key).update(text, "utf8").digest();
}

/**
 * The query (`exp=…&sig=…`) of a link to `subject` (the file, as the bridge names it) downloaded as `name`.
 * It expires at the end of the next half of `lifetimeSeconds` after `now`: between half the lifetime and
 * the whole of it from now, and the same for every link made in the meantime, so that a link to a person's
 * picture does not change with each message (the receiving side fetches a picture again when its link
 * changes).
 */
export function signedLinkQuery(
  key: Buffer | string,
  subject: string,
  name: string,
  lifetimeSeconds: number,
  now = Date.now(),
): string {
  const step = Math.max(1, Math.floor(lifetimeSeconds / 2));
  const expires = (Math.floor(now / 1000 / step) + 2) * step;
  return `exp=${String(expires)}&sig=${hmac(key, signedText(subject, name, expires)).toString("base64url")}`;
}

/**
 * Whether a link's query (its `exp` and `sig` parameters, as express parses them) was made by this key for
 * `subject` named `name`: "invalid" when not (or malformed), "expired" when it was but its time is up.
 */
export function checkSignedLink(
  key: Buffer | string,
  subject: string,
  name: string,
  query: { exp?: unknown; sig?: unknown },
  now = Date.now(),
): "valid" | "expired" | "invalid" {
  const { exp, sig } = query;
  if (typeof exp !== "string" || !EXPIRY.test(exp) || typeof sig !== "string" || !SIGNATURE.test(sig))
    return "invalid";
  const expires = Number(exp);
  // Both are 32 bytes: the comparison takes the same time wherever they differ.
  if (!timingSafeEqual(Buffer.from(sig, "base64url"), hmac(key, signedText(subject, name, expires))))
    return "invalid";
  return now < expires * 1000 ? "valid" : "expired";
}

/**
 * How a router answers a link that is not valid: 403 for one it did not sign (or that was altered), 410 for
 * one it signed whose time is up, so that the fetching side knows not to try again.
 */
export function linkRefusal(check: "expired" | "invalid"): { status: 403 | 410; error: string } {
  return check === "expired"
    ? { status: 410, error: "the link has expired" }
    : { status: 403, error: "the link's signature is missing or wrong" };
}

/** Content-Disposition for a download: an ASCII fallback name and the exact one (RFC 6266, RFC 5987). */
export function contentDisposition(name: string): string {
  const fileName = safeFileName(name);
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\%]/g, "_");
  const exact = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
