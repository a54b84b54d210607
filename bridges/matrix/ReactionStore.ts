/**
 * Reactions the bridge must remember across restarts: those officials made (so that a redaction is bridged as
 * the reaction taken back) and those its ghosts sent (so that a removal redacts the right event).
 */
import { createHash } from "node:crypto";
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";

/** A reaction an official made, kept so that its redaction can be bridged as the reaction taken back. */
export interface ReceivedReaction {
  reactsTo: string;
  key: string;
  sender: string;
}

/** A reaction a ghost sent: in which room, to which event, with which key. */
export interface SentReaction {
  room: string;
  reactsTo: string | undefined;
  ghost: string;
  key: string | undefined;
}

export class ReactionStore {
  constructor(private readonly state: KeyValueStore) {}

  async rememberReceived(matrixEventId: string, reaction: ReceivedReaction): Promise<void> {
    await this.state.put(receivedKey(matrixEventId), encodeJson(reaction));
  }

  /** The official's reaction a Matrix event was, if the bridge bridged it. */
  async received(matrixEventId: string): Promise<ReceivedReaction | undefined> {
    const entry = await this.state.get(receivedKey(matrixEventId));
    return entry === undefined ? undefined : (decodeJson(entry.value) as ReceivedReaction);
  }

  async rememberSent(reaction: SentReaction, eventId: string): Promise<void> {
    await this.state.put(sentKey(reaction), encodeJson(eventId));
  }

  /** The Matrix event id of a reaction a ghost sent. */
  async sent(reaction: SentReaction): Promise<string | undefined> {
    const entry = await this.state.get(sentKey(reaction));
    return entry === undefined ? undefined : (decodeJson(entry.value) as string);
  }

  async forgetSent(reaction: SentReaction): Promise<void> {
    await this.state.delete(sentKey(reaction));
  }
}

function receivedKey(matrixEventId: string): string {
  return `reaction.in.${keyToken(matrixEventId)}`;
}

function sentKey({ room, reactsTo, ghost, key }: SentReaction): string {
  const digest = createHash("sha256")
    .update([room, reactsTo ?? "", ghost, key ?? ""].join("\0"))
    .digest("base64url");
  return `reaction.out.${digest}`;
}
