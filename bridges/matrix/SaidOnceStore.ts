/** The notes of notices the bot said once in a room, kept in the state bucket so that a restart remembers. */
import {
  encodeJson,
  KeyExistsError,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";

/** What the bot tells a room once ever. */
export type OnceNotice = "encrypted" | "refused";

export class SaidOnceStore {
  constructor(private readonly state: KeyValueStore) {}

  /** Notes the notice as said in the room; false when it was noted already (someone else says it). */
  async claim(room: string, what: OnceNotice): Promise<boolean> {
    try {
      await this.state.create(key(room, what), encodeJson(new Date().toISOString()));
      return true;
    } catch (error) {
      if (error instanceof KeyExistsError) return false;
      throw error;
    }
  }

  /** Takes back the note of a notice that could not be said. */
  async release(room: string, what: OnceNotice): Promise<void> {
    await this.state.delete(key(room, what));
  }
}

function key(room: string, what: OnceNotice): string {
  return `said.${what}.${keyToken(room)}`;
}
