import { describe, expect, it, vi } from "vitest";
import { pingUntilAnswered } from "../../../bridges/matrix/pingUntilAnswered.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { TransientError } from "../../../schemas/contract/errors.js";

const log = createLogger("silent");
// What Synapse answers when its own retry of the bridge's transactions is under way as the ping comes.
const synapseRace = () =>
  new TransientError("FG_PEER_UNAVAILABLE", "HTTP 502 M_CONNECTION_FAILED: AlreadyCalled");

describe("pingUntilAnswered", () => {
  it("pings again after a ping the homeserver failed, and stops at the first answer", async () => {
    const ping = vi.fn().mockRejectedValueOnce(synapseRace()).mockResolvedValue(undefined);
    await pingUntilAnswered({ ping }, "fedgate-tchap", 1_000, log);
    expect(ping).toHaveBeenCalledTimes(2);
    expect(ping).toHaveBeenCalledWith("fedgate-tchap", 1_000);
  });

  it("starts without an answer after five pings, and says so", async () => {
    vi.useFakeTimers();
    try {
      const warn = vi.spyOn(log, "warn");
      const ping = vi.fn().mockRejectedValue(synapseRace());
      const done = pingUntilAnswered({ ping }, "fedgate-tchap", 1_000, log);
      await vi.runAllTimersAsync();
      await done;
      expect(ping).toHaveBeenCalledTimes(5);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });
});
