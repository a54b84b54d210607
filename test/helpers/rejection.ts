import { expect } from "vitest";
import { FedgateError } from "../../schemas/contract/errors.js";

/**
 * The error a promise rejects with, checked to be one of fedgate's, and to hold none of `secrets` in its
 * message or detail, nor a query string in its detail's path.
 */
export async function rejectionWithout(
  promise: Promise<unknown>,
  ...secrets: string[]
): Promise<FedgateError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(FedgateError);
  const fedgateError = error as FedgateError;
  for (const secret of secrets) {
    expect(fedgateError.message).not.toContain(secret);
    expect(JSON.stringify(fedgateError.detail)).not.toContain(secret);
  }
  const path = fedgateError.detail["path"];
  if (typeof path === "string") expect(path).not.toContain("?");
  return fedgateError;
}
