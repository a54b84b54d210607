/**
 * Fuzzing native parsers: hostile values, and valid wire objects with fields replaced by them, so that inputs
 * reach deep into a parser rather than failing at its first check. A parser may refuse anything, but only with
 * a typed error (FedgateError): never a TypeError, a RangeError or a crash.
 */
import fc from "fast-check";
import { expect } from "vitest";
import type { NormalisedEvent } from "../../schemas/types.js";
import { cleanEvent } from "../../bridges/kit/cleanText.js";
import { validateEvent } from "../../schemas/contract/schemas.js";
import { FedgateError } from "../../schemas/contract/errors.js";

/** How many inputs each parser gets. */
export const FUZZ_RUNS = 10_000;

/** Strings a hostile sender would try: empty, huge, controls, lone surrogates, direction overrides, digits. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\u0007bell",
    "\ud800",
    "\u202eevil",
    "9".repeat(40),
    "-1",
    "1e309",
    "NaN",
    "$".repeat(4000),
    "x".repeat(70_000),
    "__proto__",
    "constructor",
    "{}",
    "[]",
    "null",
    "true",
  ),
);

/** Any JSON-ish value, with hostile strings and numbers at the leaves. */
export const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    hostileString,
    fc.double(),
    fc.integer(),
    fc.constantFrom(0, -1, 2 ** 53, Number.MAX_VALUE, 8.64e15 + 1, 1e21),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(hostileString, tie("value"), { maxKeys: 4 }),
  ),
})).value;

type Json = Record<string, unknown>;

/** Paths of every field in a JSON object, nested objects included. */
function paths(value: Json, prefix: string[] = []): string[][] {
  return Object.entries(value).flatMap(([key, child]) => {
    const here = [...prefix, key];
    return typeof child === "object" && child !== null && !Array.isArray(child)
      ? [here, ...paths(child as Json, here)]
      : [here];
  });
}

function withField(value: Json, path: string[], replacement: unknown, remove: boolean): Json {
  const [key, ...rest] = path;
  if (key === undefined) return value;
  if (rest.length === 0) {
    if (remove) return Object.fromEntries(Object.entries(value).filter(([name]) => name !== key));
    return { ...value, [key]: replacement };
  }
  const child = value[key];
  const inner = typeof child === "object" && child !== null ? (child as Json) : {};
  return { ...value, [key]: withField(inner, rest, replacement, remove) };
}

/** A valid template with up to three of its fields replaced by hostile values or removed. */
export function mutated(template: Json): fc.Arbitrary<Json> {
  const all = paths(template);
  const change = fc.record({
    path: fc.constantFrom(...all),
    value: hostileValue,
    remove: fc.boolean(),
  });
  return fc
    .array(change, { minLength: 1, maxLength: 3 })
    .map((changes) =>
      changes.reduce(
        (value, { path, value: replacement, remove }) => withField(value, path, replacement, remove),
        template,
      ),
    );
}

/** Runs `parse`; whatever it throws must be a typed error. */
async function onlyTypedErrors(parse: () => unknown): Promise<"accepted" | "refused"> {
  try {
    await parse();
    return "accepted";
  } catch (error) {
    if (!(error instanceof FedgateError)) {
      expect.fail(
        `an untyped error: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
      );
    }
    return "refused";
  }
}

/**
 * Feeds FUZZ_RUNS inputs to `take` (which reads one as a bridge does); fails on the first untyped error and
 * counts how many were accepted and refused, for the caller to check that the inputs reach both ways.
 */
export async function fuzz(
  input: fc.Arbitrary<unknown>,
  take: (raw: unknown) => unknown,
): Promise<{ accepted: number; refused: number }> {
  const outcomes = { accepted: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(input, async (raw) => {
      outcomes[await onlyTypedErrors(() => take(raw))]++;
    }),
    { numRuns: FUZZ_RUNS },
  );
  return outcomes;
}

/**
 * What a parser made of native input, as a bridge publishes it (cleaned by the kit), must be an event the
 * contract accepts: anything else is a parser bug, reported as an untyped error.
 */
export function mustMeetContract(event: NormalisedEvent | undefined): void {
  if (event === undefined) return;
  try {
    validateEvent(cleanEvent(event));
  } catch (error) {
    throw new Error(`accepted an event the contract refuses: ${String(error)}`);
  }
}
