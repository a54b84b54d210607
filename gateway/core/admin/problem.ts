/**
 * RFC 9457 problem documents for the admin API, and which HTTP status each fedgate error code stands for.
 * Anything thrown while serving a request is turned into one problem document here, so a client always
 * gets application/problem+json and never a stack trace.
 */
import { STATUS_CODES } from "node:http";
import type { Response } from "express";
import {
  type ErrorCode,
  FedgateError,
  PermanentError,
  type SchemaProblem,
  ValidationError,
} from "../../../schemas/contract/errors.js";

/** Every code a problem document can carry. */
export type ProblemCode = ErrorCode;

export const problemMediaType = "application/problem+json";
export const problemTypeBase = "https://fedgate.eu/problems/";
/** Seconds a client should wait after a 503 caused by a transient error. */
export const retryAfterSeconds = 5;

/** An RFC 9457 problem document with fedgate's extension members `code` and `errors`. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  instance: string;
  /** One entry per schema violation, as JSON pointers into the request body. */
  errors?: SchemaProblem[];
}

/** A problem document and the response headers that go with it. */
export interface MappedProblem {
  problem: ProblemDocument;
  headers: Record<string, string>;
}

/** A failure of the HTTP exchange itself (no route, wrong media type), raised by admin middleware. */
export class HttpProblem extends PermanentError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }
}

const statusByCode: Partial<Record<ProblemCode, number>> = {
  FG_EVENT_MALFORMED: 400,
  FG_EVENT_INVALID: 400,
  FG_LINK_INVALID: 400,
  FG_REQUEST_INVALID: 400,
  FG_AUTH_REQUIRED: 401,
  FG_AUTH_INVALID: 401,
  FG_FORBIDDEN: 403,
  FG_LINK_NOT_FOUND: 404,
  FG_EVENT_NOT_FOUND: 404,
  FG_ROUTE_NOT_FOUND: 404,
  FG_LINK_CONFLICT: 409,
  FG_BODY_TOO_LARGE: 413,
  FG_MEDIA_TYPE_UNSUPPORTED: 415,
  FG_AGENCY_UNKNOWN: 422,
  FG_PARTNER_NOT_FOUND: 404,
  FG_MANIFEST_INVALID: 422,
  FG_MANIFEST_UNSIGNED: 422,
  FG_MANIFEST_UNTRUSTED: 422,
  FG_MANIFEST_TAMPERED: 422,
  FG_MANIFEST_EXPIRED: 422,
  FG_MANIFEST_STALE: 409,
  FG_CONSENT_NOT_FOUND: 404,
  FG_INTERNAL: 500,
};

const titleByCode: Partial<Record<ProblemCode, string>> = {
  FG_EVENT_MALFORMED: "Malformed event",
  FG_EVENT_INVALID: "Invalid event",
  FG_LINK_INVALID: "Invalid link",
  FG_REQUEST_INVALID: "Invalid request",
  FG_AUTH_REQUIRED: "Authentication required",
  FG_AUTH_INVALID: "Invalid credentials",
  FG_FORBIDDEN: "Forbidden",
  FG_LINK_NOT_FOUND: "Link not found",
  FG_EVENT_NOT_FOUND: "Event not found",
  FG_ROUTE_NOT_FOUND: "Not found",
  FG_LINK_CONFLICT: "Link conflict",
  FG_BODY_TOO_LARGE: "Request body too large",
  FG_MEDIA_TYPE_UNSUPPORTED: "Unsupported media type",
  FG_AGENCY_UNKNOWN: "Unknown agency",
  FG_PARTNER_NOT_FOUND: "Partner not found",
  FG_MANIFEST_INVALID: "Invalid partner manifest",
  FG_MANIFEST_UNSIGNED: "Unsigned partner manifest",
  FG_MANIFEST_UNTRUSTED: "Untrusted partner manifest",
  FG_MANIFEST_TAMPERED: "Tampered partner manifest",
  FG_MANIFEST_EXPIRED: "Expired partner manifest",
  FG_MANIFEST_STALE: "Stale partner manifest",
  FG_CONSENT_NOT_FOUND: "Consent not found",
  FG_INTERNAL: "Internal error",
};

const internalDetail = "an internal error occurred; the gateway log has the details";

/** The problem type URI of a code: FG_LINK_CONFLICT → https://fedgate.eu/problems/fg-link-conflict. */
export function problemType(code: ProblemCode): string {
  return problemTypeBase + code.toLowerCase().replaceAll("_", "-");
}

/** The HTTP status a code stands for, or undefined when the code is not a client-facing failure. */
export function statusForCode(code: ProblemCode): number | undefined {
  return statusByCode[code];
}

/** The `type` of an error raised by express.json (body-parser), e.g. "entity.parse.failed". */
export function bodyParserErrorType(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("type" in error)) return undefined;
  return typeof error.type === "string" ? error.type : undefined;
}

/** The 4xx status an HTTP-layer error (body-parser, router) carries, if any. */
function clientStatus(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null || !("status" in error)) return undefined;
  const status = error.status;
  return typeof status === "number" && status >= 400 && status <= 499 ? status : undefined;
}

function document(
  code: ProblemCode,
  status: number,
  detail: string,
  instance: string,
  errors?: SchemaProblem[],
): ProblemDocument {
  const title = titleByCode[code] ?? STATUS_CODES[status] ?? "Error";
  const problem: ProblemDocument = { type: problemType(code), title, status, detail, code, instance };
  if (errors !== undefined && errors.length > 0) problem.errors = errors;
  return problem;
}

function fromFedgateError(error: FedgateError, instance: string): MappedProblem {
  // Transient first: whatever the code, retrying is the client's remedy.
  if (error.transient) {
    return {
      problem: document(
        error.code,
        503,
        "a dependency of the gateway is briefly unavailable; retry later",
        instance,
      ),
      headers: { "Retry-After": String(retryAfterSeconds) },
    };
  }
  const status = statusForCode(error.code);
  if (status === undefined || status >= 500) {
    return { problem: document("FG_INTERNAL", 500, internalDetail, instance), headers: {} };
  }
  const errors = error instanceof ValidationError ? error.problems : undefined;
  const headers: Record<string, string> = {};
  if (error.code === "FG_AUTH_REQUIRED") headers["WWW-Authenticate"] = "Bearer";
  if (error.code === "FG_AUTH_INVALID") headers["WWW-Authenticate"] = 'Bearer error="invalid_token"';
  return { problem: document(error.code, status, error.message, instance, errors), headers };
}

function fromClientError(error: unknown, status: number, instance: string): MappedProblem {
  // Library messages can quote the request (JSON.parse does), so the detail is ours, never theirs.
  switch (bodyParserErrorType(error)) {
    case "entity.parse.failed":
      return {
        problem: document("FG_REQUEST_INVALID", 400, "the request body is not valid JSON", instance),
        headers: {},
      };
    case "entity.too.large": {
      const limit = typeof error === "object" && error !== null && "limit" in error ? error.limit : undefined;
      const bytes = typeof limit === "number" ? ` of ${limit} bytes` : "";
      const detail = `the request body is larger than the limit${bytes}`;
      return { problem: document("FG_BODY_TOO_LARGE", 413, detail, instance), headers: {} };
    }
    case "encoding.unsupported":
    case "charset.unsupported":
      return {
        problem: document(
          "FG_MEDIA_TYPE_UNSUPPORTED",
          415,
          "the request body's encoding or charset is not supported",
          instance,
        ),
        headers: {},
      };
    default:
      return {
        problem: document(
          "FG_REQUEST_INVALID",
          status,
          STATUS_CODES[status] ?? "the request is invalid",
          instance,
        ),
        headers: {},
      };
  }
}

/**
 * The problem document for anything thrown while serving `instance` (the request path).
 * Statuses of 500 and above mean the fault is the gateway's: the caller should log the error.
 */
export function toProblem(error: unknown, instance: string): MappedProblem {
  if (error instanceof HttpProblem) {
    return {
      problem: document(error.code, error.status, error.message, instance),
      headers: { ...error.headers },
    };
  }
  if (error instanceof FedgateError) return fromFedgateError(error, instance);
  const status = clientStatus(error);
  if (status !== undefined) return fromClientError(error, status, instance);
  return { problem: document("FG_INTERNAL", 500, internalDetail, instance), headers: {} };
}

/** Writes a problem document as the response. */
export function sendProblem(res: Response, mapped: MappedProblem): void {
  res
    .status(mapped.problem.status)
    .set(mapped.headers)
    .type(problemMediaType)
    .send(JSON.stringify(mapped.problem));
}
