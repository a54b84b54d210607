/** Prosody, the XMPP server, restarted mid-stream; its officer waits to write until it is back. */
import { afterAll, describe, it } from "vitest";
import { startOrSkip } from "../helpers/servers.js";
import { ChaosFederation } from "./federation.js";
import { CHAOS_TEST_TIMEOUT_MS, expectPromiseKept, strike } from "./scenario.js";

const federation = await startOrSkip("the demo federation's servers", () => ChaosFederation.start("prosody"));

describe.skipIf(federation === undefined)("chaos - Prosody restarted", () => {
  afterAll(async () => {
    await federation?.stop();
  });

  it(
    "chaos - Prosody restarted: every message once, in order, flow back within ackWaitMs + 10 s",
    async () => {
      if (federation === undefined) return;
      const verdict = await strike(federation, "Prosody restarted", async (stream) => {
        await stream.holdSending("xmpp");
        await federation.prosody.restart();
        stream.resumeSending("xmpp");
      });
      expectPromiseKept(federation, verdict);
    },
    CHAOS_TEST_TIMEOUT_MS,
  );
});
