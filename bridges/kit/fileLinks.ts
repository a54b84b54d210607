/**
 * Links a bridge serves so that other bridges can fetch a file its own network keeps behind a login
 * (Matrix's authenticated media, Stashcat's encrypted files): capability URLs, signed with a key of the
 * bridge's own, so that only links the bridge handed out are served.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { safeFileName } from "./fetchAttachment.js";

/** An HMAC-SHA256 in unpadded base64url. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;

function hmac(key: Buffer | string, subject: string): Buffer {
  return createHmac("sha256", key).update(subject, "utf8").digest();
}

/** The signature of a link to `subject` (what the link names, without its display name). */
export function linkSignature(key: Buffer | string, subject: string): string {
  return hmac(key, subject).toString("base64url");
}

export function validLinkSignature(key: Buffer | string, subject: string, signature: unknown): boolean {
  if (typeof signature !== "string" || !SIGNATURE.test(signature)) return false;
  // Both are 32 bytes: the comparison takes the same time wherever they differ.
  return timingSafeEqual(Buffer.from(signature, "base64url"), hmac(key, subject));
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
