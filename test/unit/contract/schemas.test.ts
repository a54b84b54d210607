import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderTypes, typesTargets } from "../../../scripts/schemaTypes.js";
import {
  schemaDir,
  validateAuditBatch,
  validateConfig,
  validatePartnerManifest,
  validateDelivery,
  validateEvent,
  validateLink,
  validatePolicy,
} from "../../../schemas/contract/schemas.js";
import { ValidationError } from "../../../schemas/contract/errors.js";
import { message, xmppRoom } from "../../helpers/fixtures.js";

const examplesDir = join(schemaDir, "examples");
const validators: Record<string, (value: unknown) => unknown> = {
  event: validateEvent,
  audit: validateAuditBatch,
  delivery: validateDelivery,
  link: validateLink,
  policy: validatePolicy,
  config: validateConfig,
  manifest: validatePartnerManifest,
};

describe("schemas - the contract", () => {
  it("schemas - every generated types file is what its schemas generate (run npm run generate)", async () => {
    for (const target of await typesTargets()) {
      const onDisk = await readFile(join(schemaDir, "..", target.out), "utf8");
      expect(onDisk, target.out).toBe(await renderTypes(target));
    }
  });

  it("schemas - every example document validates against its schema", async () => {
    const files = (await readdir(examplesDir)).filter((f) => /\.(json|ya?ml)$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) {
      const kind = file.split(".")[0]?.replace(/-.*$/, "") ?? "";
      const validate = validators[kind];
      expect(validate, `no validator for example ${file}`).toBeDefined();
      const text = await readFile(join(examplesDir, file), "utf8");
      const value: unknown = file.endsWith(".json") ? JSON.parse(text) : parse(text);
      expect(() => validate?.(value), file).not.toThrow();
    }
  });

  it("schemas - an edit without the event it replaces is invalid", () => {
    const problemsOf = (value: unknown): string[] =>
      validateEvent.problems(value).map((p) => `${p.pointer} ${p.message}`);
    expect(problemsOf(message(xmppRoom, "x", { type: "message.edited" }))).toContain(
      " must have required property 'relations'",
    );
    expect(problemsOf(message(xmppRoom, "x", { type: "message.edited", relations: {} }))).toContain(
      "/relations must have required property 'replaces'",
    );
    expect(() => validateEvent(message(xmppRoom, "x", { type: "message.edited" }))).toThrow(ValidationError);
  });

  it("schemas - unknown fields and wrong types are named by pointer", () => {
    const event = { ...message(xmppRoom, "x"), colour: "red" };
    expect(() => validateEvent(event)).toThrow(/colour/);
    const wrongType = { ...message(xmppRoom, "x"), timestamp: 5 };
    expect(() => validateEvent(wrongType)).toThrow(/\/timestamp/);
  });

  it("schemas - a network name that is not a subject-safe token is refused", () => {
    const event = message({ ...xmppRoom, network: "xm.pp" }, "x");
    expect(() => validateEvent(event)).toThrow(/\/source\/network/);
  });
});
