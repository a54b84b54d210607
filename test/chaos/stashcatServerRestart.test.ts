/**
 * The Stashcat server away for 5 s mid-stream and back, as in a restart: every connection cut, its ports
 * refusing, its state kept. Its officer waits to write until it is back.
 */
import { afterAll, describe, it } from "vitest";
import { startOrSkip } from "../helpers/servers.js";
import { ChaosFederation } from "./federation.js";
import { CHAOS_TEST_TIMEOUT_MS, expectPromiseKept, strike } from "./scenario.js";

const federation = await startOrSkip("the demo federation's servers", () =>
  ChaosFederation.start("stashcat-server"),
);

describe.skipIf(federation === undefined)("chaos - the Stashcat server restarted", () => {
  afterAll(async () => {
    await federation?.stop();
  });

  it(
    "chaos - the Stashcat server away for 5 s and back: every message once, in order, flow back within ackWaitMs + 10 s",
    async () => {
      if (federation === undefined) return;
      const verdict = await strike(federation, "Stashcat server away 5 s (restart)", async (stream) => {
        await stream.holdSending("stashcat");
        await federation.restartStashcat(5000);
        stream.resumeSending("stashcat");
      });
      expectPromiseKept(federation, verdict);
    },
    CHAOS_TEST_TIMEOUT_MS,
  );
});
