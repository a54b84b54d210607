import { describe, expect, it } from "vitest";
import { BoundedMap } from "../../../bridges/kit/BoundedMap.js";

describe("BoundedMap - remembers the newest entries only", () => {
  it("BoundedMap - forgets the oldest beyond its size; setting a key again makes it the newest", () => {
    const map = new BoundedMap<string, number>(2);
    map.set("a", 1);
    map.set("b", 2);
    map.set("a", 3);
    map.set("c", 4);
    expect(map.get("b")).toBeUndefined();
    expect(map.get("a")).toBe(3);
    expect(map.get("c")).toBe(4);
  });
});
