/** Synapse, the Matrix homeserver, restarted mid-stream; its official waits to write until it is back. */
import { afterAll, describe, it } from "vitest";
import { startOrSkip } from "../helpers/servers.js";
import { ChaosFederation } from "./federation.js";
import { CHAOS_TEST_TIMEOUT_MS, expectPromiseKept, strike } from "./scenario.js";

const federation = await startOrSkip("the demo federation's servers", () => ChaosFederation.start("synapse"));

describe.skipIf(federation === undefined)("chaos - Synapse restarted", () => {
  afterAll(async () => {
    await federation?.stop();
  });

  it(
    "chaos - Synapse restarted: every message once, in order, flow back within ackWaitMs + 10 s",
    async () => {
      if (federation === undefined) return;
      const verdict = await strike(federation, "Synapse restarted", async (stream) => {
        await stream.holdSending("matrix");
        await federation.synapse.restart();
        stream.resumeSending("matrix");
      });
      expectPromiseKept(federation, verdict);
    },
    CHAOS_TEST_TIMEOUT_MS,
  );
});
