/**
 * What a network can show of the normalised events, declared once per adapter (in the spirit of mautrix
 * bridgev2's room capabilities). The kit reads it before a delivery reaches the adapter: what the network
 * cannot show is audited as unsupported, never handed to the adapter to be logged and acknowledged as if
 * delivered.
 */
import type { NormalisedEvent } from "../../schemas/types.js";

export interface Capabilities {
  /** An edit as the network's own correction, as a new message that says so, or not at all. */
  edits: "native" | "as-new-message" | "none";
  deletions: "native" | "none";
  /** set: a person's whole set of reactions at once; add-remove: one at a time; counter: a count, no names. */
  reactions: "set" | "add-remove" | "counter" | "none";
  /** People of other networks joining and leaving: both shown, only leaving (a join shows with the first message), or neither. */
  membership: "native" | "leave-only" | "none";
  files: boolean;
  directChats: boolean;
  /** Messages written while the bridge was down are bridged when it is back. */
  catchUp: boolean;
}

/** Why `network` cannot show an event of this type, or undefined where it can. */
export function unsupportedReason(
  network: string,
  capabilities: Capabilities,
  type: NormalisedEvent["type"],
): string | undefined {
  const cannot = (what: string): string => `${network} shows no ${what} of people on other networks`;
  switch (type) {
    case "message.edited":
      return capabilities.edits === "none" ? cannot("corrections") : undefined;
    case "message.deleted":
      return capabilities.deletions === "none" ? cannot("deletions") : undefined;
    case "reaction.added":
    case "reaction.removed":
      return capabilities.reactions === "none" ? cannot("reactions") : undefined;
    case "member.joined":
      return capabilities.membership === "native" ? undefined : cannot("joins");
    case "member.left":
      return capabilities.membership === "none" ? cannot("leaving") : undefined;
    case "message.created":
    case "notice":
      return undefined;
  }
}
