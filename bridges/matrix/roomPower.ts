/** A member's power in a room as its state says now. */
import type { MatrixClient } from "./MatrixClient.js";
import { EventType } from "./matrixEvents.js";
import { powerOf, privilegedCreators, statePowerFor } from "./powerLevels.js";

/** A member's power in a room, and the power setting `stateType` there needs. */
export async function roomPowerOf(
  client: Pick<MatrixClient, "getState" | "getStateEvent">,
  room: string,
  userId: string,
  stateType: string = EventType.powerLevels,
): Promise<{ power: number; needed: number }> {
  const [levels, create] = await Promise.all([
    client.getState(room, EventType.powerLevels, ""),
    client.getStateEvent(room, EventType.create, ""),
  ]);
  return {
    power: powerOf(levels, userId, privilegedCreators(create)),
    needed: statePowerFor(levels, stateType),
  };
}
