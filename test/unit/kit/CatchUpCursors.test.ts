import { describe, expect, it } from "vitest";
import { CatchUpCursors } from "../../../bridges/kit/CatchUpCursors.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";

describe("CatchUpCursors", () => {
  it("CatchUpCursors - a position set survives a restart (a new instance on the same bucket), per conversation", async () => {
    const bus = new MemoryBus();
    const state = await bus.keyValue("fedgate_test_state");
    const before = new CatchUpCursors<string>(state);
    expect(await before.get("lage@conference.bpol")).toBeUndefined();
    await before.set("lage@conference.bpol", "stanza-7");
    await before.set("other@conference.bpol", "stanza-2");
    const after = new CatchUpCursors<string>(state);
    expect(await after.get("lage@conference.bpol")).toBe("stanza-7");
    expect(await after.get("other@conference.bpol")).toBe("stanza-2");
  });

  it("CatchUpCursors - the key is the bridge's own choice, so that cursors written before keep being found", async () => {
    const bus = new MemoryBus();
    const state = await bus.keyValue("fedgate_test_state");
    await state.put("last.channel.1001", encodeJson(41));
    const cursors = new CatchUpCursors<number>(state, (c) => c.replace(":", "."));
    expect(await cursors.get("channel:1001")).toBe(41);
    await cursors.set("channel:1001", 42);
    expect((await state.get("last.channel.1001"))?.value).toEqual(encodeJson(42));
  });
});
