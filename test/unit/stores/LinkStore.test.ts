import { describe, expect, it } from "vitest";
import { MemoryKeyValue } from "../../../gateway/bus/MemoryKeyValue.js";
import { LinkStore } from "../../../gateway/stores/LinkStore.js";
import { crossBorderLink, xmppRoom } from "../../helpers/fixtures.js";

describe("LinkStore - which link a conversation belongs to", () => {
  it("LinkStore - resolve finds a link another process stored before this replica's mirror saw it", async () => {
    const kv = new MemoryKeyValue();
    const replica = new LinkStore(kv);
    await replica.start();
    // Stored behind the mirror's back: the watch has not told this replica yet.
    const bridge = new LinkStore(kv);
    replica.stop();
    await bridge.create(crossBorderLink);
    expect(replica.match(xmppRoom)).toBeUndefined();
    const found = await replica.resolve(xmppRoom);
    expect(found?.link.id).toBe(crossBorderLink.id);
    expect(found?.others).toHaveLength(crossBorderLink.endpoints.length - 1);
    expect(replica.match(xmppRoom)?.link.id).toBe(crossBorderLink.id);
    expect(await replica.resolve({ ...xmppRoom, conversation: "unlinked@conference.bpol" })).toBeUndefined();
  });
});
