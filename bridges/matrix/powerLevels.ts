/**
 * Power in a Matrix room, read from its m.room.power_levels content as the spec's defaults say: what a
 * member has, and what setting a state event needs. From room version 12 on, the room's creators hold
 * unlimited power that the power levels do not list.
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

/** Room versions whose creators have only the power the power levels give them. */
const versionsWithoutCreatorPower: ReadonlySet<string> = new Set(
  Array.from({ length: 11 }, (_, i) => String(i + 1)),
);

/**
 * The users with unlimited power in a room, from its m.room.create event (whole, with its sender): from room
 * version 12 on, its sender and `additional_creators`; none in earlier rooms.
 */
export function privilegedCreators(create: Record<string, unknown> | undefined): string[] {
  const content = create?.["content"];
  const version = entry(content, "room_version") ?? "1";
  if (typeof version !== "string" || versionsWithoutCreatorPower.has(version)) return [];
  const additional = entry(content, "additional_creators");
  return [create?.["sender"], ...(Array.isArray(additional) ? (additional as unknown[]) : [])].filter(
    (user): user is string => typeof user === "string",
  );
}

/** A member's power level: unlimited for a privileged creator, else their own, else users_default, else 0. */
export function powerOf(levels: Levels, userId: string, creators: readonly string[] = []): number {
  if (creators.includes(userId)) return Number.POSITIVE_INFINITY;
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
