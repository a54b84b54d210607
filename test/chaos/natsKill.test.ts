/** nats-server killed with SIGKILL in the middle of the stream and started again a second later. */
import { afterAll, describe, it } from "vitest";
import { startOrSkip } from "../helpers/servers.js";
import { ChaosFederation } from "./federation.js";
import { CHAOS_TEST_TIMEOUT_MS, expectPromiseKept, strike } from "./scenario.js";

const federation = await startOrSkip("the demo federation's servers", () => ChaosFederation.start("nats"));

describe.skipIf(federation === undefined)("chaos - nats-server killed", () => {
  afterAll(async () => {
    await federation?.stop();
  });

  it(
    "chaos - kill -9 of nats-server, restarted a second later: every message once, in order, flow back within ackWaitMs + 10 s",
    async () => {
      if (federation === undefined) return;
      const verdict = await strike(federation, "nats-server kill -9, restarted 1 s later", async () => {
        await federation.killNats();
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await federation.startNats();
      });
      expectPromiseKept(federation, verdict);
    },
    CHAOS_TEST_TIMEOUT_MS,
  );
});
