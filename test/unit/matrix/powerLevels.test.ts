import { describe, expect, it } from "vitest";
import { powerOf, privilegedCreators, statePowerFor } from "../../../bridges/matrix/powerLevels.js";

describe("Matrix power levels", () => {
  const levels = {
    users: { "@claire:tchap": 100, "@odd:tchap": "100" },
    users_default: 5,
    events: { "eu.fedgate.marking": 75 },
    state_default: 60,
  };

  it("Matrix power levels - a member's own level, else users_default, else 0; a level that is not a number counts as none", () => {
    expect(powerOf(levels, "@claire:tchap")).toBe(100);
    expect(powerOf(levels, "@bob:tchap")).toBe(5);
    expect(powerOf(levels, "@odd:tchap")).toBe(5);
    expect(powerOf({}, "@bob:tchap")).toBe(0);
    expect(powerOf(undefined, "@bob:tchap")).toBe(0);
  });

  it("Matrix power levels - a state event needs its type's level, else state_default, else 50", () => {
    expect(statePowerFor(levels, "eu.fedgate.marking")).toBe(75);
    expect(statePowerFor(levels, "m.room.topic")).toBe(60);
    expect(statePowerFor({ events: { "eu.fedgate.marking": "0" } }, "eu.fedgate.marking")).toBe(50);
    expect(statePowerFor(undefined, "eu.fedgate.marking")).toBe(0);
  });

  it("Matrix power levels - from room version 12 on, the creators hold unlimited power the levels do not list", () => {
    const create = (content: Record<string, unknown>) => ({ sender: "@claire:tchap", content });
    const v12 = privilegedCreators(create({ room_version: "12", additional_creators: ["@anne:tchap", 7] }));
    expect(v12).toEqual(["@claire:tchap", "@anne:tchap"]);
    expect(powerOf(levels, "@anne:tchap", v12)).toBe(Number.POSITIVE_INFINITY);
    expect(powerOf(levels, "@bob:tchap", v12)).toBe(5);
    for (const content of [{ room_version: "11" }, { room_version: "1" }, {}, { room_version: 12 }])
      expect(privilegedCreators(create(content)), JSON.stringify(content)).toEqual([]);
    expect(privilegedCreators(undefined)).toEqual([]);
  });
});
