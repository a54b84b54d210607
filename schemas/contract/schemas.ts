/**
 * Validators for every document fedgate reads from a file or the network, compiled once from schemas/.
 */
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type {
  AuditBatch,
  BridgeHealth,
  Config,
  DeadLetter,
  Delivery,
  FederatedEvent,
  FederationReceipt,
  Link,
  NormalisedEvent,
  PartnerManifest,
  Policy,
  SignedConsentGrant,
  SignedPartnerManifest,
} from "../types.js";
import { type ErrorCode, type SchemaProblem, ValidationError } from "./errors.js";

/** schemas/ sits at the package root, both when run from source and from dist/. */
function findSchemaDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "schemas");
    if (existsSync(join(candidate, "event.schema.json"))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error("fedgate: schemas/ not found next to the installed package");
    dir = parent;
  }
}

export const schemaDir = findSchemaDir();
/** The installed package's root folder (schemas/ and each bridge's own schema live below it). */
export const packageRoot = dirname(schemaDir);
const schemaFiles = [
  "common.schema.json",
  "event.schema.json",
  "delivery.schema.json",
  "decision.schema.json",
  "link.schema.json",
  "policy.schema.json",
  "config.schema.json",
  "deadletter.schema.json",
  "partner-manifest.schema.json",
  "federation.schema.json",
  "bridge-health.schema.json",
] as const;

// strictRequired is off because conditional branches (if/then) require properties their parent defines.
// verbose: errors carry their schema, so a rule's own description can explain a failed "not".
const ajv = new Ajv2020({
  allErrors: true,
  strict: true,
  strictRequired: false,
  useDefaults: true,
  allowUnionTypes: true,
  verbose: true,
});
addFormats.default(ajv);
for (const file of schemaFiles) {
  ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, file), "utf8")) as object);
}

function toProblems(errors: ErrorObject[] | null | undefined): SchemaProblem[] {
  return (errors ?? [])
    .filter((e) => e.keyword !== "if")
    .map((e) => {
      // "must NOT be valid" says nothing; the rule's description says what is wrong.
      const description = (e.parentSchema as { description?: unknown } | undefined)?.description;
      if (e.keyword === "not" && typeof description === "string") {
        return { pointer: e.instancePath, message: description };
      }
      const additional =
        e.keyword === "additionalProperties" ? ` "${String(e.params["additionalProperty"])}"` : "";
      return { pointer: e.instancePath, message: `${e.message ?? "is invalid"}${additional}` };
    });
}

/** A checked validator: returns the value typed, or throws ValidationError with every problem found. */
export interface Validator<T> {
  (value: unknown): T;
  /** The same check, returning the problems instead of throwing (for callers that build their own error). */
  problems(value: unknown): SchemaProblem[];
}

/**
 * A validator for a schema of a bridge's own (its config section), which may refer to the contract's
 * schemas by file name, e.g. "config.schema.json#/$defs/Secret".
 */
export function validatorFor<T>(schemaFile: string, what: string, code: ErrorCode): Validator<T> {
  const schema = JSON.parse(readFileSync(join(packageRoot, schemaFile), "utf8")) as { $id: string };
  if (ajv.getSchema(schema.$id) === undefined) ajv.addSchema(schema);
  return validator<T>(schema.$id, what, code);
}

function validator<T>(ref: string, what: string, code: ErrorCode): Validator<T> {
  const compiled: ValidateFunction | undefined = ajv.getSchema(ref);
  if (compiled === undefined) throw new Error(`schema ${ref} is not loaded`);
  const check = ((value: unknown): T => {
    if (!compiled(value)) throw new ValidationError(code, what, toProblems(compiled.errors));
    return value as T;
  }) as Validator<T>;
  check.problems = (value: unknown) => (compiled(value) ? [] : toProblems(compiled.errors));
  return check;
}

export const validateEvent = validator<NormalisedEvent>("event.schema.json", "event", "FG_EVENT_INVALID");
export const validateDelivery = validator<Delivery>("delivery.schema.json", "delivery", "FG_EVENT_INVALID");
export const validateAuditBatch = validator<AuditBatch>(
  "decision.schema.json#/$defs/AuditBatch",
  "audit batch",
  "FG_EVENT_INVALID",
);
export const validateLink = validator<Link>("link.schema.json", "link", "FG_LINK_INVALID");
export const validatePolicy = validator<Policy>("policy.schema.json", "policy", "FG_POLICY_INVALID");
export const validateConfig = validator<Config>("config.schema.json", "config", "FG_CONFIG_INVALID");
export const validateBridgeHealth = validator<BridgeHealth>(
  "bridge-health.schema.json",
  "bridge health",
  "FG_EVENT_INVALID",
);
export const validateDeadLetter = validator<DeadLetter>(
  "deadletter.schema.json",
  "dead letter",
  "FG_EVENT_INVALID",
);
export const validatePartnerManifest = validator<PartnerManifest>(
  "partner-manifest.schema.json#/$defs/PartnerManifest",
  "partner manifest",
  "FG_MANIFEST_INVALID",
);
export const validateSignedPartnerManifest = validator<SignedPartnerManifest>(
  "partner-manifest.schema.json",
  "signed partner manifest",
  "FG_MANIFEST_INVALID",
);
export const validateSignedConsentGrant = validator<SignedConsentGrant>(
  "federation.schema.json#/$defs/SignedConsentGrant",
  "signed consent grant",
  "FG_GRANT_INVALID",
);
export const validateFederatedEvent = validator<FederatedEvent>(
  "federation.schema.json#/$defs/FederatedEvent",
  "federated event",
  "FG_EVENT_INVALID",
);
export const validateFederationReceipt = validator<FederationReceipt>(
  "federation.schema.json#/$defs/FederationReceipt",
  "federation receipt",
  "FG_EVENT_INVALID",
);
