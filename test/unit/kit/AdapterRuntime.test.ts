import { describe, expect, it } from "vitest";
import { AdapterRuntime } from "../../../bridges/kit/AdapterRuntime.js";
import { MemoryBus } from "../../../gateway/bus/MemoryBus.js";
import { createLogger } from "../../../gateway/log.js";

const log = createLogger("silent");

describe("AdapterRuntime", () => {
  it("AdapterRuntime - native input gets the same event id every time, distinct per instance, valid for the schema", async () => {
    const bus = new MemoryBus();
    const tchap = await AdapterRuntime.open(bus, { network: "matrix", instance: "tchap", log });
    const other = await AdapterRuntime.open(bus, { network: "matrix", instance: "other", log });
    const id = tchap.eventIdOf("$abc:tchap.gouv.fr");
    expect(id).toBe(tchap.eventIdOf("$abc:tchap.gouv.fr"));
    expect(id).not.toBe(other.eventIdOf("$abc:tchap.gouv.fr"));
    expect(id).not.toBe(tchap.eventIdOf("$abc:tchap.gouv.fr", "like"));
    // Parts are kept apart: ("a", "bc") is not ("ab", "c").
    expect(tchap.eventIdOf("a", "bc")).not.toBe(tchap.eventIdOf("ab", "c"));
    expect(id).toMatch(/^[0-9A-Za-z][0-9A-Za-z_-]{7,63}$/);
    await tchap.close();
    await other.close();
  });
});
