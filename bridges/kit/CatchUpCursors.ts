/**
 * Per conversation, the last native message bridged: where catching up starts after a restart or an outage.
 * Kept in the bridge's own state bucket, as `last.<conversation key>`; read once, then held in memory, since
 * one bridge writes its conversations' cursors.
 */
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";

export class CatchUpCursors<Position extends string | number> {
  private readonly held = new Map<string, Position | undefined>();

  /** `keyOf` turns a conversation into its key token (default: keyToken, which bounds and escapes it). */
  constructor(
    private readonly state: KeyValueStore,
    private readonly keyOf: (conversation: string) => string = keyToken,
  ) {}

  /** The last position bridged in the conversation; undefined before anything was. */
  async get(conversation: string): Promise<Position | undefined> {
    const key = this.keyOf(conversation);
    if (this.held.has(key)) return this.held.get(key);
    const entry = await this.state.get(`last.${key}`);
    const position = entry === undefined ? undefined : (decodeJson(entry.value) as Position);
    this.held.set(key, position);
    return position;
  }

  /** Stores `position` as the conversation's last bridged one. */
  async set(conversation: string, position: Position): Promise<void> {
    const key = this.keyOf(conversation);
    await this.state.put(`last.${key}`, encodeJson(position));
    this.held.set(key, position);
  }
}
