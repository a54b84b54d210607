/**
 * Room markings: fedgate's room state that marks everything said in the room, kept for its messages and
 * shown at the head of its topic.
 */
import { PermanentError } from "../../schemas/contract/errors.js";
import { BoundedMap } from "../kit/BoundedMap.js";
import { CACHE_SIZE } from "./cacheSize.js";
import type { BotNotices } from "./BotNotices.js";
import { matrixErrcode, type MatrixClient } from "./MatrixClient.js";
import { EventType, markingOfState, markingStateKey, type MatrixEvent } from "./matrixEvents.js";
import { roomPowerOf } from "./roomPower.js";

/** The topic with the marking leading in brackets, replacing any the bridge put there before. */
export function withTopicMarking(topic: string, marking: string | undefined): string {
  const rest = topic.replace(/^\[[A-Z0-9-]+\]\s*/, "");
  return marking === undefined ? rest : `[${marking}] ${rest}`.trimEnd();
}

export interface RoomMarkingsDeps {
  client: Pick<MatrixClient, "getState" | "getStateEvent" | "sendState">;
  notices: Pick<BotNotices, "say">;
}

export class RoomMarkings {
  /** Room markings from their state event, by room id (null: none). */
  private readonly markings = new BoundedMap<string, string | null>(CACHE_SIZE);

  constructor(private readonly deps: RoomMarkingsDeps) {}

  /**
   * A room's marking changed: kept for its next messages, and shown in its topic. Only room state under the
   * empty key, set by a member with the power to set it, is the room's marking: the same type sent as a
   * message (which any member may send), or under another state key, is refused.
   */
  async onMarkingChanged(event: MatrixEvent): Promise<void> {
    const { client, notices } = this.deps;
    const detail = { room: event.room_id, user: event.sender };
    if (event.state_key !== markingStateKey)
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `${event.sender}'s ${EventType.marking} ${event.state_key === undefined ? "message" : "state under another key"} is not the room's marking: only its state under the empty key is`,
        { detail },
      );
    const { power, needed } = await roomPowerOf(client, event.room_id, event.sender, EventType.marking);
    if (power < needed)
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `${event.sender} has no power to set the room's marking; it is not changed`,
        { detail },
      );
    const marking = markingOfState(event.content);
    this.markings.set(event.room_id, marking ?? null);
    const topic = await client.getState(event.room_id, EventType.topic, "");
    const current = typeof topic?.["topic"] === "string" ? topic["topic"] : "";
    const text = withTopicMarking(current, marking);
    if (text === current) return;
    try {
      await client.sendState(event.room_id, EventType.topic, "", { topic: text });
    } catch (error) {
      if (matrixErrcode(error) !== "M_FORBIDDEN") throw error;
      await notices.say(
        event.room_id,
        `The room's marking is now ${marking ?? "none"}. To show it in the topic, give fedgate power level 50.`,
      );
    }
  }

  async roomMarkingOf(room: string): Promise<{ roomMarking?: string }> {
    let marking = this.markings.get(room);
    if (marking === undefined) {
      const content = await this.deps.client.getState(room, EventType.marking, markingStateKey);
      marking = (content === undefined ? undefined : markingOfState(content)) ?? null;
      this.markings.set(room, marking);
    }
    return marking === null ? {} : { roomMarking: marking };
  }
}
