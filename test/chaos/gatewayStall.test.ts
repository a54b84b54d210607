/** The gateway frozen (SIGSTOP) for longer than its partition leases last, then thawed (SIGCONT). */
import { afterAll, describe, it } from "vitest";
import { startOrSkip } from "../helpers/servers.js";
import { ChaosFederation } from "./federation.js";
import { CHAOS_TEST_TIMEOUT_MS, expectPromiseKept, strike } from "./scenario.js";

const federation = await startOrSkip("the demo federation's servers", () => ChaosFederation.start("stall"));

describe.skipIf(federation === undefined)("chaos - the gateway stalled", () => {
  afterAll(async () => {
    await federation?.stop();
  });

  it(
    "chaos - SIGSTOP of the gateway for longer than its lease, then SIGCONT: every message once, in order, flow back within ackWaitMs + 10 s",
    async () => {
      if (federation === undefined) return;
      // A lease lasts ackWaitMs + 3 s (8 s here): 10 s lets every lease expire while the gateway sleeps.
      const stallMs = federation.settings.ackWaitMs + 5000;
      const gateway = federation.gateways[0];
      if (gateway === undefined) throw new Error("no gateway");
      const verdict = await strike(federation, `gateway SIGSTOP for ${stallMs / 1000} s, then SIGCONT`, () =>
        federation.freeze(gateway, stallMs),
      );
      expectPromiseKept(federation, verdict);
    },
    CHAOS_TEST_TIMEOUT_MS,
  );
});
