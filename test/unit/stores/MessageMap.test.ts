import { describe, expect, it } from "vitest";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { MessageMap } from "../../../gateway/platform/stores/MessageMap.js";

const room = { network: "xmpp", instance: "bpol", conversation: "einsatz@conference.bpol.example" };

describe("MessageMap - every id a message has", () => {
  it("MessageMap - an id that names one message is never taken over by another that claims it", async () => {
    const messages = new MessageMap(new MemoryKeyValue());
    expect(await messages.record("event-aaaaaaaa", room, "origin-a", ["stanza-a"])).toEqual([]);
    // Another occupant's message reuses the first one's stanza-id as its own origin-id.
    expect(await messages.record("event-bbbbbbbb", room, "stanza-a", ["stanza-b"])).toEqual(["stanza-a"]);
    expect(await messages.eventId(room, "stanza-a")).toBe("event-aaaaaaaa");
    expect(await messages.eventId(room, "origin-a")).toBe("event-aaaaaaaa");
    expect(await messages.eventId(room, "stanza-b")).toBe("event-bbbbbbbb");
  });

  it("MessageMap - recording the same message again is idempotent", async () => {
    const messages = new MessageMap(new MemoryKeyValue());
    await messages.record("event-aaaaaaaa", room, "origin-a", ["stanza-a"]);
    expect(await messages.record("event-aaaaaaaa", room, "origin-a", ["stanza-a"])).toEqual([]);
    expect(await messages.eventId(room, "stanza-a")).toBe("event-aaaaaaaa");
    expect(await messages.nativeId("event-aaaaaaaa", room)).toBe("origin-a");
  });

  it("MessageMap - a packed id (XMPP's: both ids and the author) is given back, but only its aliases find the message", async () => {
    const kv = new MemoryKeyValue();
    const messages = new MessageMap(kv);
    const packed = JSON.stringify({ o: "origin-a", s: "stanza-a", a: "weber@bpol.example" });
    await messages.record("event-aaaaaaaa", room, packed, ["stanza-a", "origin-a"], true);
    expect(await messages.nativeId("event-aaaaaaaa", room)).toBe(packed);
    expect(await messages.eventId(room, "stanza-a")).toBe("event-aaaaaaaa");
    expect(await messages.eventId(room, "origin-a")).toBe("event-aaaaaaaa");
    // One key less per message and conversation: nothing ever looks a message up by its packed id.
    expect(await messages.eventId(room, packed)).toBeUndefined();
    expect(await kv.keys()).toHaveLength(3);
  });
});
