/**
 * Power in a Matrix room, read from its m.room.power_levels content as the spec's defaults say: what a
 * member has, and what setting a state event needs.
 */

type Levels = Record<string, unknown> | undefined;

function level(value: unknown): number | undefined {
  return typeof value === "number" && Number.isInteger(value) ? value : undefined;
}

function entry(map: unknown, key: string): unknown {
  return typeof map === "object" && map !== null && !Array.isArray(map)
    ? (map as Record<string, unknown>)[key]
    : undefined;
}

/** A member's power level: their own, else users_default, else 0. */
export function powerOf(levels: Levels, userId: string): number {
  return level(entry(levels?.["users"], userId)) ?? level(levels?.["users_default"]) ?? 0;
}

/**
 * The power level setting a state event of `type` needs: the event type's own, else state_default, which
 * is 50 when unspecified (0 only in a room without a power levels event at all).
 */
export function statePowerFor(levels: Levels, type: string): number {
  if (levels === undefined) return 0;
  return level(entry(levels["events"], type)) ?? level(levels["state_default"]) ?? 50;
}
