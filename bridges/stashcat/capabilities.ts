import type { Capabilities } from "../kit/capabilities.js";

/**
 * Stashcat has no puppets: the service account posts for everyone, so an edit is a new message marked
 * "(corrected)", reactions are its one like, and people of other networks neither join nor leave.
 */
export const stashcatCapabilities: Capabilities = {
  edits: "as-new-message",
  deletions: "native",
  reactions: "counter",
  membership: "none",
  files: true,
  directChats: true,
  catchUp: true,
};
