/**
 * A file's media type as its bytes show it, not as its sender says. Policies admit files by type (image/*,
 * application/pdf); a sender's word, or a server that repeats it, would let a program through as a picture.
 * The source adapter describes every file with this type, and the receiving adapter checks the bytes it
 * carries against the event's type with the same function, so both sides read the same bytes the same way.
 */
import { fileTypeFromBuffer, supportedMimeTypes } from "file-type";

/** How much of a file's start is read for its signature: the same on both sides, whatever the file's size. */
export const SIGNATURE_BYTES = 64 * 1024;

const OCTET_STREAM = "application/octet-stream";

/** Text formats: a signature is optional for them (XML without a declaration, JSON, calendars). */
const TEXTUAL = /^text\/|^application\/(xml|json)$|\+(xml|json)$/;

/**
 * Containers file-type may name instead of the format inside, when the part of the file it reads does not
 * tell: a declared type of that family is kept (a .docx is a zip, an SVG is XML, a .doc is OLE2).
 */
const CONTAINERS: Readonly<Record<string, RegExp>> = {
  "application/zip":
    /^application\/(vnd\.openxmlformats-officedocument\.|vnd\.oasis\.opendocument\.|vnd\.ms-[a-z]+\.[a-z.]+macroenabled\.12$|java-archive$|vnd\.android\.package-archive$)|\+zip$/,
  "application/xml": /^text\/xml$|\+xml$/,
  "application/x-cfb": /^application\/(msword|vnd\.ms-|vnd\.visio$)/,
};

/** Types file-type knows a signature of, without parameters (it names Opus audio/ogg; codecs=opus). */
const SIGNED = new Set([...supportedMimeTypes].map((type) => essence(type)));

function essence(type: string): string {
  return type.split(";")[0]?.trim().toLowerCase() ?? "";
}

/**
 * The type of a file declared `declared` (a media type as the schema wants it) whose bytes start with
 * `bytes` (at least the first SIGNATURE_BYTES, or all of a shorter file):
 *
 * - the declared type when the bytes bear it out, or bear out its container (see CONTAINERS);
 * - the type the bytes' signature shows when it contradicts the declared one (a program declared a PNG is
 *   application/x-msdownload);
 * - application/octet-stream when the declared type has a signature the bytes lack;
 * - the declared type for bytes without a signature, when the type has none either (text/plain).
 */
export async function mediaTypeOfBytes(declared: string, bytes: Uint8Array): Promise<string> {
  let detected: Awaited<ReturnType<typeof fileTypeFromBuffer>>;
  try {
    detected = await fileTypeFromBuffer(bytes.subarray(0, SIGNATURE_BYTES));
  } catch {
    // Bytes that break the signature parser show no type anyone may rely on.
    return OCTET_STREAM;
  }
  if (detected === undefined)
    return SIGNED.has(declared) && !TEXTUAL.test(declared) ? OCTET_STREAM : declared;
  const shown = essence(detected.mime);
  if (shown === declared || CONTAINERS[shown]?.test(declared) === true) return declared;
  return shown;
}
