/** The service account's session, kept in the state bucket so that a restart resumes it rather than logs in. */
import { decodeJson, encodeJson, type KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import type { StashcatSessionStore } from "./StashcatClient.js";

export function sessionStore(state: KeyValueStore): StashcatSessionStore {
  return {
    load: async () => {
      const entry = await state.get("session");
      return entry === undefined ? undefined : (decodeJson(entry.value) as string);
    },
    save: async (clientKey) => {
      await state.put("session", encodeJson(clientKey));
    },
  };
}
