import { expect, it } from "vitest";
import { validateConfig } from "../../../schemas/contract/schemas.js";
import { checkDeclaredLinks } from "../../../gateway/core/GatewayService.js";
import { PolicyEngine } from "../../../gateway/core/policy/PolicyEngine.js";
import { examplePolicyFile } from "../../helpers/fixtures.js";

function configWith(agencyTokens: Record<string, { value: string }>) {
  return validateConfig({
    nats: { url: "nats://127.0.0.1:4222" },
    admin: { token: { value: "operator" }, agencyTokens },
  });
}

it("config - an agency admin's token must name an agency the policy declares, and the error names the key", async () => {
  const policy = await PolicyEngine.fromFile(examplePolicyFile);
  expect(() =>
    checkDeclaredLinks(configWith({ bpol: { value: "t" } }), "fedgate.yaml", policy),
  ).not.toThrow();
  expect(() => checkDeclaredLinks(configWith({ nobody: { value: "t" } }), "fedgate.yaml", policy)).toThrow(
    /fedgate\.yaml.*\/admin\/agencyTokens\/nobody.*not declared/,
  );
});

it("config - agency tokens default to none and take no malformed agency id", () => {
  expect(
    validateConfig({ nats: { url: "nats://x" }, admin: { token: { value: "o" } } }).admin?.agencyTokens,
  ).toEqual({});
  expect(() => configWith({ "Not An Id": { value: "t" } })).toThrow(/agencyTokens/);
});
