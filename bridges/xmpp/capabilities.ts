import type { Capabilities } from "../kit/capabilities.js";

/**
 * XMPP (XEP-0308 corrections, XEP-0424 retractions, XEP-0444 reactions as a person's whole set). A puppet
 * enters a room with its first message, so a join alone has nothing to show; leaving takes it out.
 */
export const xmppCapabilities: Capabilities = {
  edits: "native",
  deletions: "native",
  reactions: "set",
  membership: "leave-only",
  files: true,
  directChats: true,
  catchUp: true,
};
