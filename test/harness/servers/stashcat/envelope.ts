/**
 * Stashcat's wire conventions on the server side: the `{status, payload, signature}` envelope every answer
 * (but a file download) comes in, refusals as HTTP 200 with a non-OK status, and request fields as clients
 * post them: strings in a form, booleans spelt `true`, `True` or `1`, numbers as digits, and arrays or
 * objects as JSON inside one field.
 */

export interface Envelope {
  status: { value: "OK" | "ERROR"; short_message: string | false; message: string | false };
  payload: unknown;
  signature: string;
}

/** A success. The real server often sends `false` where a message would be; clients must cope. */
export function ok(payload: unknown): Envelope {
  return { status: { value: "OK", short_message: false, message: false }, payload, signature: "" };
}

/** What the server says when it refuses a request; `shortMessage` is the machine-readable part. */
export type RefusalCode =
  | "auth_invalid"
  | "login_failed"
  | "missing_values"
  | "invalid_values"
  | "not_found"
  | "no_permission"
  | "unknown_endpoint"
  | "method_not_allowed"
  | "file_too_large"
  | "internal_error";

/** A request the server refuses: answered with an error envelope, HTTP 200. */
export class Refusal extends Error {
  constructor(
    readonly shortMessage: RefusalCode,
    message: string,
  ) {
    super(message);
    this.name = "Refusal";
  }
}

export function refused(refusal: Refusal): Envelope {
  return {
    status: { value: "ERROR", short_message: refusal.shortMessage, message: refusal.message },
    payload: {},
    signature: "",
  };
}

const TRUE = /^(?:true|1)$/i;
const INTEGER = /^-?\d{1,15}$/;

/** The fields of one request, read as Stashcat clients write them. */
export class Form {
  constructor(private readonly fields: Readonly<Record<string, unknown>>) {}

  /** Parses whatever body parser ran (none leaves `undefined`); repeated fields count by their first value. */
  static of(body: unknown): Form {
    // No prototype: a field named __proto__ is a field like any other.
    const fields = Object.create(null) as Record<string, unknown>;
    if (typeof body === "object" && body !== null)
      for (const [name, value] of Object.entries(body as Record<string, unknown>))
        fields[name] = Array.isArray(value) ? (value as unknown[])[0] : value;
    return new Form(fields);
  }

  has(name: string): boolean {
    return this.string(name) !== undefined;
  }

  /** The field's text; an absent field and one that is not text are both undefined. */
  string(name: string): string | undefined {
    const value = this.fields[name];
    return typeof value === "string" ? value : undefined;
  }

  /** Refuses the request, naming every one of `names` that is absent or empty. */
  require(...names: string[]): void {
    const missing = names.filter((name) => (this.string(name) ?? "") === "");
    if (missing.length > 0)
      throw new Refusal("missing_values", `missing values, ${missing.join(" and ")} required`);
  }

  /** A field that must be there and not be empty. */
  requiredString(name: string): string {
    this.require(name);
    return this.string(name) ?? "";
  }

  /** `true` or `1` in any case is true; anything else given is false. */
  bool(name: string, fallback = false): boolean {
    const value = this.string(name);
    return value === undefined || value === "" ? fallback : TRUE.test(value.trim());
  }

  /** An integer posted as digits; undefined when absent or empty. */
  int(name: string): number | undefined {
    const value = this.string(name)?.trim();
    if (value === undefined || value === "") return undefined;
    if (!INTEGER.test(value)) throw new Refusal("invalid_values", `${name} must be an integer`);
    return Number(value);
  }

  requiredInt(name: string): number {
    this.require(name);
    return this.int(name) ?? 0;
  }

  /** JSON inside the field; undefined when absent or empty. */
  json(name: string): unknown {
    const value = this.string(name);
    if (value === undefined || value.trim() === "") return undefined;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      throw new Refusal("invalid_values", `${name} is not valid JSON`);
    }
  }

  /** A JSON array of integers (or of digit strings), as `files="[1,2]"`; empty when absent. */
  intList(name: string): number[] {
    const value = this.json(name);
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw new Refusal("invalid_values", `${name} must be a JSON array`);
    return (value as unknown[]).map((item) => {
      const id = typeof item === "string" && INTEGER.test(item) ? Number(item) : item;
      if (typeof id !== "number" || !Number.isSafeInteger(id))
        throw new Refusal("invalid_values", `${name} must be a JSON array of integers`);
      return id;
    });
  }
}

/** An id given as a number or as digits (clients differ), else undefined. */
export function asId(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  if (typeof value === "string" && INTEGER.test(value.trim())) return Number(value.trim());
  return undefined;
}
