import { afterEach, describe, expect, it, vi } from "vitest";

afterEach(() => {
  vi.doUnmock("../../../bridges/stashcat/runStashcatBridge.js");
  vi.resetModules();
});

describe("bridge registry", () => {
  it("bridge registry - a network not in this build is a typed error that names the ones there are", async () => {
    const { bridgeNetworks, loadBridge } = await import("../../../bridges/index.js");
    await expect(loadBridge("signal")).rejects.toMatchObject({
      code: "FG_BRIDGE_UNAVAILABLE",
      message: `the signal bridge is not part of this build (available: ${bridgeNetworks.join(", ")})`,
    });
    // Inherited names are no networks either.
    await expect(loadBridge("constructor")).rejects.toMatchObject({ code: "FG_BRIDGE_UNAVAILABLE" });
  });

  it("bridge registry - an adapter module that fails to load fails its bridge alone, saying why", async () => {
    vi.doMock("../../../bridges/stashcat/runStashcatBridge.js", () => {
      throw new Error("ENOENT: bridges/stashcat/config.schema.json");
    });
    const { loadBridge } = await import("../../../bridges/index.js");
    const failure = await loadBridge("stashcat").catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "FG_BRIDGE_UNAVAILABLE" });
    expect((failure as Error).message).toMatch(/^the stashcat bridge could not be loaded: .+/);
    expect((failure as Error).cause).toBeInstanceOf(Error);
    const xmpp = await loadBridge("xmpp");
    expect(typeof xmpp.run).toBe("function");
    expect(typeof xmpp.checkSection).toBe("function");
  });
});
