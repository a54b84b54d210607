/**
 * Downloading attachments, for every bridge. A source adapter describes a file its user shared (size, hash,
 * type, name) without keeping it; a receiving adapter fetches the bytes for re-upload and checks them
 * against the event. Downloads stream and stop as soon as they exceed their limit.
 *
 * Attachment URLs are often capability URLs (whoever knows one can read the file), so errors name only the
 * host, never the path or query. Files come only from the hosts fileHosts.ts allows, and their media type is
 * what their bytes show (mediaTypeOfBytes.ts).
 */
import { createHash } from "node:crypto";
import { request, type Agent, type Dispatcher } from "undici";
import { FedgateError, PermanentError, TransientError } from "../../schemas/contract/errors.js";
import type { Attachment } from "../../schemas/types.js";
import { fileHostDispatcher } from "./fileHostDispatcher.js";
import { PUBLIC_HOSTS_ONLY, type FileHosts } from "./fileHosts.js";
import { mediaTypeOfBytes, SIGNATURE_BYTES } from "./mediaTypeOfBytes.js";

export interface FetchAttachmentOptions {
  /** Refuse anything larger, as soon as the response announces it or the bytes read exceed it. */
  maxBytes: number;
  /** Longest wait for the response headers; default 10 s. */
  headersTimeoutMs?: number;
  /** Longest pause between two chunks of the body; default 30 s. */
  bodyTimeoutMs?: number;
  /** Longest time for the whole download, redirects included; default 120 s. */
  timeoutMs?: number;
  /** Redirects followed; default 3. */
  maxRedirects?: number;
  /**
   * Which hosts files are fetched from, redirects included (see fileHosts.ts); default public addresses
   * only: a URL from a native user or an event must not make the bridge read internal services.
   */
  hosts?: FileHosts;
  /**
   * Request headers, such as a homeserver's Authorization: sent to the URL's origin only, and dropped for
   * good at the first redirect to another origin, which must not learn a credential.
   */
  headers?: Record<string, string>;
}

/** The schema's pattern for Attachment.mediaType. */
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/;
const FALLBACK_MEDIA_TYPE = "application/octet-stream";
const MAX_URL_LENGTH = 2048;
const MAX_NAME_LENGTH = 255;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Statuses that say "later", not "never". */
const RETRYABLE = new Set([408, 425, 429]);

/**
 * The fetch options a bridge's `attachments` config section gives: its size limit, and the hosts files
 * come from: those it lists and `ownServers` (the URLs of the bridge's own server, when it reads its own
 * network's files) whatever their address, any other only on a public address unless `publicHosts` is off.
 */
export function attachmentFetchOptions(
  {
    maxBytes,
    hosts = [],
    publicHosts,
  }: { maxBytes: number; hosts?: readonly string[]; publicHosts: boolean },
  ownServers: readonly string[] = [],
): FetchAttachmentOptions {
  return { maxBytes, hosts: { trusted: [...hosts, ...ownServers], publicHosts } };
}

/** A media type as the schema wants it: lowercased, without parameters; application/octet-stream if odd. */
export function normaliseMediaType(contentType: string | undefined): string {
  const essence = contentType?.split(";")[0]?.trim().toLowerCase() ?? "";
  return MEDIA_TYPE.test(essence) ? essence : FALLBACK_MEDIA_TYPE;
}

/**
 * A file name that is safe to show and to hand to another server: no control or bidi-override characters
 * (which can disguise an extension), no path separators, at most 255 characters keeping the extension.
 */
export function safeFileName(name: string): string {
  const cleaned = name
    .replace(/[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu, "")
    .replace(/[/\\]/g, "_")
    .trim();
  if (cleaned === "" || cleaned === "." || cleaned === "..") return "file";
  // Code points, as the schema's maxLength counts them.
  const chars = Array.from(cleaned);
  if (chars.length <= MAX_NAME_LENGTH) return cleaned;
  const dot = cleaned.lastIndexOf(".");
  const extension = dot > 0 && cleaned.length - dot <= 16 ? Array.from(cleaned.slice(dot)) : [];
  return [...chars.slice(0, MAX_NAME_LENGTH - extension.length), ...extension].join("");
}

/** The URL's last path segment, decoded. */
function nameOf(url: URL): string {
  const segment = url.pathname.split("/").pop() ?? "";
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    decoded = segment;
  }
  return safeFileName(decoded);
}

function invalid(message: string, host: string | undefined, detail: Record<string, unknown> = {}): never {
  throw new PermanentError(
    "FG_ATTACHMENT_INVALID",
    host === undefined ? message : `attachment at ${host}: ${message}`,
    { detail: { ...detail, ...(host === undefined ? {} : { host }) } },
  );
}

/**
 * Why an HTTP exchange failed, in words safe to log: its timeout, or undici's error code (undici's messages
 * carry no URL, but the code is all a reader needs).
 */
export function networkFailureReason(cause: unknown, signal: AbortSignal, timedOut: string): string {
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (signal.aborted) return timedOut;
  if (typeof code === "string") return code;
  return cause instanceof Error ? cause.name : "unknown error";
}

/** A network failure of a download. */
function unreachable(host: string, cause: unknown, signal: AbortSignal): FedgateError {
  if (cause instanceof FedgateError) return cause;
  const reason = networkFailureReason(cause, signal, "the download took too long");
  return new TransientError("FG_PEER_UNAVAILABLE", `cannot fetch attachment from ${host}: ${reason}`, {
    cause,
    detail: { host },
  });
}

function parseUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    invalid("the attachment URL is not a URL", undefined);
  }
  checkTarget(parsed);
  return parsed;
}

/** Only the scheme: which hosts and addresses are fetched from is checked where connections are made. */
function checkTarget(url: URL): void {
  if (url.protocol !== "http:" && url.protocol !== "https:")
    invalid(`only http and https URLs are fetched, not ${url.protocol}`, url.host || undefined);
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

interface Opened {
  host: string;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
  signal: AbortSignal;
}

/**
 * Runs one download on a dispatcher of its own that connects only where `options.hosts` allows, and closes
 * its connections when the download ends.
 */
async function withHostRules<T>(
  options: FetchAttachmentOptions,
  download: (dispatcher: Agent) => Promise<T>,
): Promise<T> {
  const dispatcher = fileHostDispatcher(options.hosts ?? PUBLIC_HOSTS_ONLY);
  try {
    return await download(dispatcher);
  } finally {
    await dispatcher.destroy().catch(() => undefined);
  }
}

/** GETs the URL, following redirects, and returns a 200 response whose body is still unread. */
async function open(url: URL, options: FetchAttachmentOptions, dispatcher: Dispatcher): Promise<Opened> {
  const signal = AbortSignal.timeout(options.timeoutMs ?? 120_000);
  const maxRedirects = options.maxRedirects ?? 3;
  let target = url;
  let requestHeaders = options.headers;
  for (let redirects = 0; ; redirects++) {
    const host = target.host;
    let response: Dispatcher.ResponseData;
    try {
      response = await request(target, {
        method: "GET",
        headersTimeout: options.headersTimeoutMs ?? 10_000,
        bodyTimeout: options.bodyTimeoutMs ?? 30_000,
        signal,
        dispatcher,
        ...(requestHeaders === undefined ? {} : { headers: requestHeaders }),
      });
    } catch (cause) {
      throw unreachable(host, cause, signal);
    }
    const { statusCode: status, headers, body } = response;
    // undici's body emits an error when destroyed unread after it arrived whole; a refusal here destroys
    // it that way, and an error nobody listens for would end the process. Readers still see their errors.
    body.on("error", () => undefined);
    if (status === 200) return { host, headers, body, signal };
    // Only the status matters; the body of a refusal is not read beyond what frees the connection.
    await body.dump().catch(() => undefined);
    const location = header(headers, "location");
    if (REDIRECTS.has(status) && location !== undefined) {
      if (redirects >= maxRedirects) invalid(`more than ${maxRedirects} redirects`, host, { status });
      const from = target;
      try {
        target = new URL(location, target);
      } catch {
        invalid(`HTTP ${status} redirects to something that is not a URL`, host, { status });
      }
      checkTarget(target);
      if (target.origin !== from.origin) requestHeaders = undefined;
      continue;
    }
    if (status >= 500 || RETRYABLE.has(status))
      throw new TransientError("FG_PEER_UNAVAILABLE", `attachment at ${host}: HTTP ${status}`, {
        detail: { host, status },
      });
    invalid(`HTTP ${status}`, host, { status });
  }
}

/**
 * Reads the body, at most `limit` bytes: one byte more destroys the stream, which closes the connection,
 * and throws what `tooMuch` returns. Returns the byte count.
 */
async function read(
  opened: Opened,
  limit: number,
  tooMuch: () => never,
  onChunk: (chunk: Buffer) => void,
): Promise<number> {
  let count = 0;
  try {
    for await (const chunk of opened.body as AsyncIterable<Buffer>) {
      count += chunk.length;
      // Leaving the loop destroys the body, which aborts the download.
      if (count > limit) tooMuch();
      onChunk(chunk);
    }
  } catch (cause) {
    throw unreachable(opened.host, cause, opened.signal);
  }
  return count;
}

function tooLarge(host: string, maxBytes: number): never {
  invalid(`larger than the limit of ${maxBytes} bytes`, host, { maxBytes });
}

/**
 * Describes a file a native user shared: downloads it (http or https only) without keeping it, to learn its
 * size and SHA-256. The media type is what the bytes show, read against the served Content-Type (see
 * mediaTypeOfBytes); the name comes from the URL's last path segment. The URL is returned as the WHATWG URL
 * serialises it, which is the input for any well-formed URL.
 */
export async function describeAttachment(url: string, options: FetchAttachmentOptions): Promise<Attachment> {
  const hash = createHash("sha256");
  const { parsed, mediaType, size } = await download(url, options, (chunk) => hash.update(chunk));
  return { name: nameOf(parsed), mediaType, size, sha256: hash.digest("hex"), url: parsed.href };
}

/** A file no event describes (a person's picture): its bytes and the type they show, at most `maxBytes`. */
export async function fetchFile(
  url: string,
  options: FetchAttachmentOptions,
): Promise<{ bytes: Buffer; mediaType: string }> {
  const chunks: Buffer[] = [];
  const { mediaType, size } = await download(url, options, (chunk) => chunks.push(chunk));
  return { bytes: Buffer.concat(chunks, size), mediaType };
}

/**
 * GETs a URL (http or https only) and reads its body, at most `maxBytes`, handing on each chunk; its media
 * type is what the first SIGNATURE_BYTES show.
 */
async function download(
  url: string,
  options: FetchAttachmentOptions,
  onChunk: (chunk: Buffer) => void,
): Promise<{ parsed: URL; mediaType: string; size: number }> {
  const parsed = parseUrl(url);
  if (parsed.href.length > MAX_URL_LENGTH)
    invalid(`the URL is longer than ${MAX_URL_LENGTH} characters`, parsed.host);
  return withHostRules(options, async (dispatcher) => {
    const opened = await open(parsed, options, dispatcher);
    const declared = Number(header(opened.headers, "content-length"));
    if (declared > options.maxBytes) {
      opened.body.destroy();
      tooLarge(opened.host, options.maxBytes);
    }
    const head: Buffer[] = [];
    let headBytes = 0;
    const size = await read(
      opened,
      options.maxBytes,
      () => tooLarge(opened.host, options.maxBytes),
      (chunk) => {
        if (headBytes < SIGNATURE_BYTES) {
          head.push(chunk);
          headBytes += chunk.length;
        }
        onChunk(chunk);
      },
    );
    const served = normaliseMediaType(header(opened.headers, "content-type"));
    return { parsed, mediaType: await mediaTypeOfBytes(served, Buffer.concat(head)), size };
  });
}

/**
 * The bytes of an event's attachment, for re-upload. Refuses a file above `maxBytes`, bytes whose count or
 * SHA-256 differ from what the event says (the file changed, or someone tampered with it), and bytes whose
 * type contradicts the event's media type: the bus is not trusted to have checked.
 */
export async function fetchAttachment(
  attachment: Attachment,
  options: FetchAttachmentOptions,
): Promise<Buffer> {
  const parsed = parseUrl(attachment.url);
  if (attachment.size > options.maxBytes) tooLarge(parsed.host, options.maxBytes);
  const bytes = await withHostRules(options, async (dispatcher) => {
    const opened = await open(parsed, options, dispatcher);
    const mismatch = (): never =>
      invalid(`the file is not the size the event says (${attachment.size} bytes)`, opened.host);
    const declared = header(opened.headers, "content-length");
    if (declared !== undefined && Number(declared) !== attachment.size) {
      opened.body.destroy();
      mismatch();
    }
    const hash = createHash("sha256");
    const chunks: Buffer[] = [];
    const size = await read(opened, attachment.size, mismatch, (chunk) => {
      hash.update(chunk);
      chunks.push(chunk);
    });
    if (size !== attachment.size) mismatch();
    if (hash.digest("hex") !== attachment.sha256)
      invalid("the file's SHA-256 differs from the one the event says", opened.host);
    return Buffer.concat(chunks, size);
  });
  const shown = await mediaTypeOfBytes(attachment.mediaType, bytes);
  if (shown !== attachment.mediaType)
    invalid(`the file's bytes are ${shown}, not the ${attachment.mediaType} the event says`, parsed.host, {
      mediaType: attachment.mediaType,
      shown,
    });
  return bytes;
}
