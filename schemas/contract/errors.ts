/**
 * One error hierarchy for all of fedgate. Every error carries a searchable `code` (listed in the README),
 * says whether retrying can help (`transient`), and keeps its `cause`.
 */

export type ErrorCode =
  | "FG_CONFIG_INVALID"
  | "FG_CONFIG_UNREADABLE"
  | "FG_SECRET_UNAVAILABLE"
  | "FG_EVENT_MALFORMED"
  | "FG_EVENT_INVALID"
  | "FG_LINK_INVALID"
  | "FG_LINK_CONFLICT"
  | "FG_LINK_NOT_FOUND"
  // The admin API knows no routed message with that id (never routed, or past the message horizon).
  | "FG_EVENT_NOT_FOUND"
  // A join code that is unknown, expired, used, or issued for another conversation.
  | "FG_JOIN_CODE_INVALID"
  | "FG_POLICY_INVALID"
  // A partner manifest: not one (or not signed), signed by no configured authority, changed since it was
  // signed, or outside its validity; and a signing key file that is not an Ed25519 key.
  | "FG_MANIFEST_INVALID"
  | "FG_MANIFEST_UNSIGNED"
  | "FG_MANIFEST_UNTRUSTED"
  | "FG_MANIFEST_TAMPERED"
  | "FG_MANIFEST_EXPIRED"
  // A manifest older than the one held, or of the same version with other content.
  | "FG_MANIFEST_STALE"
  // The admin API knows no partner gateway of that id.
  | "FG_PARTNER_NOT_FOUND"
  // A consent grant: not one, signed by a key the partner's manifest does not list, or older than the one held.
  | "FG_GRANT_INVALID"
  | "FG_GRANT_UNTRUSTED"
  | "FG_GRANT_STALE"
  // The admin API holds no grant of either gateway for that shared conversation.
  | "FG_CONSENT_NOT_FOUND"
  // A partner gateway refused a federated event for good (its code and detail follow).
  | "FG_PARTNER_REFUSED"
  | "FG_KEY_INVALID"
  // `fedgate audit verify` found the audit trail's chain broken: a batch edited, removed or inserted.
  | "FG_AUDIT_BROKEN"
  | "FG_AGENCY_UNKNOWN"
  | "FG_BUS_UNAVAILABLE"
  // NATS presented a certificate the configured CA does not verify / refused fedgate's credentials.
  | "FG_BUS_TLS_REJECTED"
  | "FG_BUS_AUTH_REJECTED"
  | "FG_BUS_PUBLISH_FAILED"
  | "FG_STORE_FAILED"
  | "FG_AUTH_REQUIRED"
  | "FG_AUTH_INVALID"
  // An agency admin's token asked for what only the operator or another agency may do.
  | "FG_FORBIDDEN"
  | "FG_BRIDGE_UNAVAILABLE"
  // A bridge and the messenger server it serves.
  | "FG_PEER_REFUSED"
  | "FG_PEER_UNAVAILABLE"
  | "FG_NATIVE_INVALID"
  // An encrypted Matrix event the bridge holds no key for (not shared with its device, withheld, or not
  // arrived yet): never bridged as if it were a message.
  | "FG_NATIVE_UNDECRYPTABLE"
  // A file to bridge: not http(s), too large, refused by its server, or not the bytes its event describes.
  | "FG_ATTACHMENT_INVALID"
  // A message, file or key that does not open with the keys it should (a network's end-to-end encryption).
  | "FG_DECRYPTION_FAILED"
  | "FG_SERVER_START_FAILED"
  // The admin API's own failures of the HTTP exchange.
  | "FG_REQUEST_INVALID"
  | "FG_ROUTE_NOT_FOUND"
  | "FG_MEDIA_TYPE_UNSUPPORTED"
  | "FG_BODY_TOO_LARGE"
  // A bug: never expected, always logged with its stack.
  | "FG_INTERNAL";

export interface FedgateErrorOptions {
  cause?: unknown;
  /** Structured detail for logs and problem documents; never secrets or message text. */
  detail?: Record<string, unknown>;
}

export class FedgateError extends Error {
  readonly code: ErrorCode;
  readonly transient: boolean;
  readonly detail: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, transient: boolean, options: FedgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.transient = transient;
    this.detail = options.detail ?? {};
  }
}

/** Retrying may succeed: the bus or a store was briefly unreachable. JetStream redelivers with a delay. */
export class TransientError extends FedgateError {
  constructor(code: ErrorCode, message: string, options?: FedgateErrorOptions) {
    super(code, message, true, options);
  }
}

/** Retrying cannot succeed: the input is wrong. The event goes to the dead-letter subject with this reason. */
export class PermanentError extends FedgateError {
  constructor(code: ErrorCode, message: string, options?: FedgateErrorOptions) {
    super(code, message, false, options);
  }
}

/** A configuration or policy file is wrong. Names the file and the JSON pointer of the offending key. */
export class ConfigError extends PermanentError {
  readonly file: string;
  readonly pointer: string;

  constructor(
    file: string,
    pointer: string,
    problem: string,
    options?: FedgateErrorOptions & { code?: ErrorCode },
  ) {
    super(
      options?.code ?? "FG_CONFIG_INVALID",
      `${file}: ${pointer === "" ? "(root)" : pointer}: ${problem}`,
      options,
    );
    this.file = file;
    this.pointer = pointer;
  }
}

/** One schema violation, as a JSON pointer and what is wrong there. */
export interface SchemaProblem {
  pointer: string;
  message: string;
}

/** A document from the network broke its schema. */
export class ValidationError extends PermanentError {
  readonly problems: SchemaProblem[];

  constructor(code: ErrorCode, what: string, problems: SchemaProblem[], options?: FedgateErrorOptions) {
    const first = problems[0];
    const summary =
      first === undefined
        ? "invalid"
        : `${first.pointer === "" ? "(root)" : first.pointer}: ${first.message}`;
    const more = problems.length > 1 ? ` (+${problems.length - 1} more)` : "";
    super(code, `${what} is invalid: ${summary}${more}`, {
      ...options,
      detail: { ...options?.detail, problems },
    });
    this.problems = problems;
  }
}

export function isTransient(error: unknown): boolean {
  return error instanceof FedgateError && error.transient;
}

/** The code of any thrown value, for logs and dead letters. */
export function errorCode(error: unknown): ErrorCode {
  return error instanceof FedgateError ? error.code : "FG_INTERNAL";
}
