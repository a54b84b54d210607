/**
 * What bridges' catch-ups do: reading back what a conversation received while the bridge was away or the bus
 * could not store it (an XMPP room's archive, a Stashcat chat's history).
 */
import { counter } from "../../gateway/platform/telemetry.js";

export type CatchUpOutcome = "done" | "behind" | "failed";

export const catchUpRuns = counter("fedgate.catchup.runs", {
  description:
    "Catch-ups of one conversation, by network and outcome: done, behind (the bus did not store in time; another follows), failed",
});

export const catchUpMessages = counter("fedgate.catchup.messages", {
  description: "Messages read back from a network's history by catch-ups and handed to bridging, by network",
});
