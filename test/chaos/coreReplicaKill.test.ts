/** Two core replicas; the one working on the linked conversations is killed with SIGKILL mid-stream. */
import { afterAll, describe, it } from "vitest";
import { startOrSkip } from "../helpers/servers.js";
import { ChaosFederation, defaultSettings } from "./federation.js";
import { CHAOS_TEST_TIMEOUT_MS, expectPromiseKept, strike } from "./scenario.js";

const federation = await startOrSkip("the demo federation's servers", () =>
  ChaosFederation.start("replica", { ...defaultSettings, gatewayReplicas: 2 }),
);

describe.skipIf(federation === undefined)("chaos - a core replica killed", () => {
  afterAll(async () => {
    await federation?.stop();
  });

  it(
    "chaos - kill -9 of the core replica holding the conversations, another running: every message once, in order, flow back within ackWaitMs + 10 s",
    async () => {
      if (federation === undefined) return;
      const verdict = await strike(federation, "core replica kill -9, the other takes over", async () => {
        await federation.kill(await federation.replicaOfConversations());
      });
      expectPromiseKept(federation, verdict);
    },
    CHAOS_TEST_TIMEOUT_MS,
  );
});
