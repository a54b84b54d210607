/**
 * HTTP File Upload (XEP-0363) for the bridge's component: find the server's upload service, ask it for a
 * slot in the name of a puppet, and PUT the bytes there. The slot's GET URL is then announced with
 * out-of-band data (see outOfBand.ts).
 *
 * Slot URLs are capability URLs: errors name the host only.
 */
import { request, type Dispatcher } from "undici";
import { FedgateError, PermanentError, TransientError } from "../../schemas/contract/errors.js";
import { networkFailureReason, safeFileName } from "../kit/fetchAttachment.js";
import { NS } from "./namespaces.js";
import { isDefinite, stanzaErrorOf } from "./stanzaErrors.js";
import { xml, type XmlElement, type XmppComponent } from "./XmppComponent.js";

/** What of the component these functions use, so tests can stand in for it. */
export type IqRequester = Pick<XmppComponent, "request">;

export interface UploadService {
  /** The service's JID, where slot requests go. */
  jid: string;
  /** The largest file it accepts, in bytes, when it says. */
  maxFileSize?: number;
}

export interface SlotRequest {
  /** The upload service's JID. */
  service: string;
  /** Who uploads: a puppet on the component's domain; the server's quota counts per bare JID. */
  from: string;
  /** Made safe for the server (no path separators, no control characters) before it is sent. */
  filename: string;
  size: number;
  contentType: string;
}

export interface UploadSlot {
  put: { url: string; headers: Record<string, string> };
  get: string;
}

export interface UploadOptions {
  /** Longest silence of the server while the body goes out and until its response headers; default 30 s. */
  headersTimeoutMs?: number;
  /** Longest time for the whole upload; default 120 s. */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

/** The only headers XEP-0363 lets a slot prescribe; anything else from the server is dropped. */
const SLOT_HEADERS = new Map([
  ["authorization", "Authorization"],
  ["cookie", "Cookie"],
  ["expires", "Expires"],
]);
/** Stanza error conditions that say the server is busy or unwell rather than unwilling. */
const RETRYABLE_CONDITIONS = new Set([
  "internal-server-error",
  "remote-server-not-found",
  "remote-server-timeout",
  "resource-constraint",
  "service-unavailable",
]);

function httpUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const protocol = new URL(value).protocol;
    return protocol === "http:" || protocol === "https:" ? value : undefined;
  } catch {
    return undefined;
  }
}

function hostOf(url: string): string {
  return new URL(url).host;
}

/** max-file-size from the service's XEP-0128 form, when it gives one. */
function maxFileSizeOf(query: XmlElement): number | undefined {
  for (const form of query.getChildren("x", NS.dataForms)) {
    const fields = form.getChildren("field");
    const value = (name: string): string | undefined =>
      fields
        .find((field) => field.attrs["var"] === name)
        ?.getChildText("value")
        ?.trim();
    if (value("FORM_TYPE") !== NS.httpUpload) continue;
    const size = value("max-file-size");
    if (size !== undefined && /^\d+$/.test(size)) return Number(size);
  }
  return undefined;
}

/**
 * Finds the upload service of `domain`: the domain itself or one of its disco#items that announces
 * urn:xmpp:http:upload:0. Undefined when the server has none; a TransientError when some entity could not
 * answer and none of the others is the service.
 */
export async function discoverUploadService(
  component: IqRequester,
  from: string,
  domain: string,
  options: { timeoutMs?: number } = {},
): Promise<UploadService | undefined> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const candidates = [domain];
  try {
    const items = await component.request(
      xml("iq", { type: "get", from, to: domain }, xml("query", { xmlns: NS.discoItems })),
      timeoutMs,
    );
    for (const item of items.getChild("query", NS.discoItems)?.getChildren("item") ?? []) {
      const jid = item.attrs["jid"];
      // An item with a node is a part of an entity, not an entity of its own.
      if (jid !== undefined && item.attrs["node"] === undefined && !candidates.includes(jid))
        candidates.push(jid);
    }
  } catch (error) {
    // A server without disco#items may still offer upload on its own domain.
    if (!isDefinite(error)) throw error;
  }

  const answers = await Promise.allSettled(
    candidates.map((jid) =>
      component.request(
        xml("iq", { type: "get", from, to: jid }, xml("query", { xmlns: NS.discoInfo })),
        timeoutMs,
      ),
    ),
  );
  let undecided: unknown;
  for (const [index, answer] of answers.entries()) {
    const jid = candidates[index];
    if (jid === undefined) continue;
    if (answer.status === "rejected") {
      if (!isDefinite(answer.reason)) undecided ??= answer.reason;
      continue;
    }
    const query = answer.value.getChild("query", NS.discoInfo);
    const features = query?.getChildren("feature").map((feature) => feature.attrs["var"]) ?? [];
    if (query === undefined || !features.includes(NS.httpUpload)) continue;
    const maxFileSize = maxFileSizeOf(query);
    return maxFileSize === undefined ? { jid } : { jid, maxFileSize };
  }
  if (undecided !== undefined)
    throw new TransientError(
      "FG_PEER_UNAVAILABLE",
      `cannot tell whether ${domain} offers file upload: not every service answered`,
      { cause: undecided, detail: { domain } },
    );
  return undefined;
}

/** What a refused slot request means for the file. */
function slotRefusal(error: unknown, slot: SlotRequest): FedgateError {
  const stanzaError = stanzaErrorOf(error);
  if (stanzaError === undefined) {
    return error instanceof FedgateError
      ? error
      : new TransientError("FG_PEER_UNAVAILABLE", `no upload slot from ${slot.service}`, { cause: error });
  }
  const { condition, type } = stanzaError;
  const detail: Record<string, unknown> = { service: slot.service, condition, size: slot.size };
  const tooLarge = stanzaError.element?.getChild("file-too-large", NS.httpUpload);
  if (tooLarge !== undefined) {
    const max = tooLarge.getChildText("max-file-size")?.trim();
    if (max !== undefined && /^\d+$/.test(max)) detail["maxFileSize"] = Number(max);
    return new PermanentError(
      "FG_ATTACHMENT_INVALID",
      `${slot.service} refuses a file of ${slot.size} bytes as too large` +
        (max === undefined ? "" : ` (at most ${max})`),
      { cause: error, detail },
    );
  }
  const reason = stanzaError.text === undefined || stanzaError.text === "" ? condition : stanzaError.text;
  if (type === "wait" || RETRYABLE_CONDITIONS.has(condition))
    return new TransientError("FG_PEER_UNAVAILABLE", `${slot.service} gives no upload slot now: ${reason}`, {
      cause: error,
      detail,
    });
  if (type === "auth" || condition === "forbidden" || condition === "not-allowed")
    return new PermanentError(
      "FG_PEER_REFUSED",
      `${slot.service} does not let ${slot.from} upload (${reason}); the server's upload access list must admit the bridge's domain`,
      { cause: error, detail },
    );
  // bad-request, not-acceptable (a file type the server does not take) and the like: this file, not the bridge.
  return new PermanentError("FG_ATTACHMENT_INVALID", `${slot.service} refuses the file: ${reason}`, {
    cause: error,
    detail,
  });
}

/** Asks the upload service for a slot; the server's refusal becomes a typed error that says why. */
export async function requestSlot(
  component: IqRequester,
  slot: SlotRequest,
  options: { timeoutMs?: number } = {},
): Promise<UploadSlot> {
  let reply: XmlElement;
  try {
    reply = await component.request(
      xml(
        "iq",
        { type: "get", from: slot.from, to: slot.service },
        xml("request", {
          xmlns: NS.httpUpload,
          filename: safeFileName(slot.filename),
          size: String(slot.size),
          "content-type": slot.contentType,
        }),
      ),
      options.timeoutMs,
    );
  } catch (error) {
    throw slotRefusal(error, slot);
  }
  const element = reply.getChild("slot", NS.httpUpload);
  const put = element?.getChild("put");
  const putUrl = httpUrl(put?.attrs["url"]);
  const getUrl = httpUrl(element?.getChild("get")?.attrs["url"]);
  if (put === undefined || putUrl === undefined || getUrl === undefined)
    throw new PermanentError("FG_PEER_REFUSED", `${slot.service} answered with no usable upload slot`, {
      detail: { service: slot.service },
    });
  const headers: Record<string, string> = {};
  for (const header of put.getChildren("header")) {
    const name = SLOT_HEADERS.get((header.attrs["name"] ?? "").toLowerCase());
    const value = header.text().trim();
    // XEP-0363 forbids newlines in header values; one would let the server inject headers.
    if (name !== undefined && !/[\r\n]/.test(value)) headers[name] = value;
  }
  return { put: { url: putUrl, headers }, get: getUrl };
}

/** PUTs the bytes into the slot. Resolves once the server has stored them (HTTP 200 or 201). */
export async function upload(
  slot: UploadSlot,
  bytes: Uint8Array,
  contentType: string,
  options: UploadOptions = {},
): Promise<void> {
  const host = hostOf(slot.put.url);
  const signal = AbortSignal.timeout(options.timeoutMs ?? 120_000);
  let status: number;
  try {
    const response = await request(slot.put.url, {
      method: "PUT",
      headers: {
        ...slot.put.headers,
        "Content-Type": contentType,
        "Content-Length": String(bytes.byteLength),
      },
      body: bytes,
      headersTimeout: options.headersTimeoutMs ?? 30_000,
      signal,
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
    });
    status = response.statusCode;
    await response.body.dump();
  } catch (cause) {
    const reason = networkFailureReason(cause, signal, "the upload took too long");
    throw new TransientError("FG_PEER_UNAVAILABLE", `cannot upload to ${host}: ${reason}`, {
      cause,
      detail: { host },
    });
  }
  if (status === 200 || status === 201) return;
  const detail = { host, status };
  if (status >= 500 || status === 408 || status === 429)
    throw new TransientError("FG_PEER_UNAVAILABLE", `upload to ${host}: HTTP ${status}`, { detail });
  // Prosody's slot tokens expire five minutes after the slot was given; a retry asks for a new slot.
  if (status === 410)
    throw new TransientError("FG_PEER_UNAVAILABLE", `upload to ${host}: HTTP 410, the slot expired`, {
      detail,
    });
  // Prosody answers 413 when the bytes are not the size the slot was asked for.
  if (status === 413)
    throw new PermanentError("FG_ATTACHMENT_INVALID", `upload to ${host}: HTTP 413, too large`, { detail });
  throw new PermanentError("FG_PEER_REFUSED", `upload to ${host}: HTTP ${status}`, { detail });
}
