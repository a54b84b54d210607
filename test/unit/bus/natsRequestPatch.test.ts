import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Msg } from "@nats-io/nats-core";
import { RequestOne, type MuxSubscription } from "@nats-io/nats-core/internal";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  natsCoreVersion,
  PATCHED_NATS_CORE,
  patchNatsRequest,
} from "../../../gateway/platform/bus/natsRequestPatch.js";

// The module the library's requests take RequestError from; not among the package's exports.
const errorsModule = createRequire(import.meta.url)(
  join(dirname(createRequire(import.meta.url).resolve("@nats-io/nats-core")), "errors.js"),
) as { RequestError: new (message?: string) => Error };

/** A request as the library makes one, with a mux that only records being left. */
function request(): { request: RequestOne; left: () => boolean } {
  let left = false;
  const mux = {
    cancel: () => {
      left = true;
    },
  } as unknown as MuxSubscription;
  return { request: new RequestOne(mux, "subject", { timeout: 60_000 }, false), left: () => left };
}

const answer = { subject: "reply", data: new Uint8Array() } as unknown as Msg;

/** How many RequestErrors `act` builds. */
function errorsBuiltBy(act: () => void): number {
  const spy = vi.spyOn(errorsModule, "RequestError");
  try {
    act();
    return spy.mock.calls.length;
  } finally {
    spy.mockRestore();
  }
}

describe("natsRequestPatch - a successful NATS request builds no Error", () => {
  afterEach(() => vi.restoreAllMocks());

  it("natsRequestPatch - the library as installed builds an Error for a request that got its answer", async () => {
    const { request: unpatched } = request();
    expect(errorsBuiltBy(() => unpatched.resolver(null, answer))).toBe(1);
    await expect(unpatched.deferred).resolves.toBe(answer);
  });

  it(`natsRequestPatch - applies to the installed @nats-io/nats-core (${PATCHED_NATS_CORE}); another version must be checked again`, () => {
    expect(natsCoreVersion()).toBe(PATCHED_NATS_CORE);
    expect(patchNatsRequest()).toBe(true);
    expect(patchNatsRequest()).toBe(true);
  });

  it("natsRequestPatch - patched, an answered request resolves, leaves the mux and builds no Error", async () => {
    patchNatsRequest();
    const { request: answered, left } = request();
    expect(errorsBuiltBy(() => answered.resolver(null, answer))).toBe(0);
    await expect(answered.deferred).resolves.toBe(answer);
    expect(left()).toBe(true);
  });

  it("natsRequestPatch - patched, a failed request still rejects with the library's error and leaves the mux", async () => {
    patchNatsRequest();
    const { request: failed, left } = request();
    failed.resolver(new Error("no responders"), answer);
    await expect(failed.deferred).rejects.toThrow("no responders");
    expect(left()).toBe(true);
  });
});
