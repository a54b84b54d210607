import type { Capabilities } from "../kit/capabilities.js";

/** Matrix: ghosts edit, redact, react, join and leave as any user does. */
export const matrixCapabilities: Capabilities = {
  edits: "native",
  deletions: "native",
  reactions: "add-remove",
  membership: "native",
  files: true,
  directChats: true,
  catchUp: true,
};
