/** The Stashcat bridge's process killed with SIGKILL mid-stream and started again. */
import { afterAll, describe, it } from "vitest";
import { startOrSkip } from "../helpers/servers.js";
import { ChaosFederation } from "./federation.js";
import { CHAOS_TEST_TIMEOUT_MS, expectPromiseKept, strike } from "./scenario.js";

const federation = await startOrSkip("the demo federation's servers", () =>
  ChaosFederation.start("stashcat-bridge"),
);

describe.skipIf(federation === undefined)("chaos - the Stashcat bridge killed", () => {
  afterAll(async () => {
    await federation?.stop();
  });

  it(
    "chaos - kill -9 of the Stashcat bridge, started again: every message once, in order, flow back within ackWaitMs + 10 s",
    async () => {
      if (federation === undefined) return;
      const verdict = await strike(federation, "Stashcat bridge kill -9, started again", async () => {
        await federation.kill(federation.bridge("stashcat"));
        await federation.startBridge("stashcat");
      });
      expectPromiseKept(federation, verdict);
    },
    CHAOS_TEST_TIMEOUT_MS,
  );
});
