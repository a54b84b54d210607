/**
 * The Stashcat server cuts the bridge's push connection mid-stream while the officer writes without pause:
 * twice, 3 s apart, and once more the moment the bridge is back from the second cut, while the catch-up of
 * what it missed is still pending.
 */
import { afterAll, describe, it } from "vitest";
import { eventually } from "../helpers/fixtures.js";
import { startOrSkip } from "../helpers/servers.js";
import { ChaosFederation } from "./federation.js";
import { CHAOS_TEST_TIMEOUT_MS, expectPromiseKept, strike } from "./scenario.js";

const federation = await startOrSkip("the demo federation's servers", () =>
  ChaosFederation.start("stashcat-push"),
);

describe.skipIf(federation === undefined)("chaos - the Stashcat push connection cut", () => {
  afterAll(async () => {
    await federation?.stop();
  });

  it(
    "chaos - the push connection cut twice, then again during the catch-up: every message once, in order, flow back within ackWaitMs + 10 s",
    async () => {
      if (federation === undefined) return;
      const verdict = await strike(
        federation,
        "Stashcat push cut twice, then during the catch-up",
        async (stream) => {
          /**
           * Cuts the push connection while the officer writes without pause, so that messages are written
           * while the bridge is away and pushed the moment it is back; resolves once it has logged in again.
           */
          const cut = async (): Promise<void> => {
            const logins = federation.stashcatPushLogins();
            stream.hurry("stashcat", 25);
            federation.stashcat.dropPushConnections();
            await eventually(
              () => (federation.stashcatPushLogins() > logins ? true : undefined),
              30_000,
              "the bridge's push channel back",
            );
          };
          await cut();
          await new Promise((resolve) => setTimeout(resolve, 3000));
          await cut();
          // At once after it is back: the catch-up of what it missed in the second cut is still to run.
          stream.hurry("stashcat", 25);
          federation.stashcat.dropPushConnections();
        },
      );
      expectPromiseKept(federation, verdict);
    },
    CHAOS_TEST_TIMEOUT_MS,
  );
});
