import { describe, expect, it } from "vitest";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { directLink } from "../../../schemas/contract/directConversations.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { crossBorderLink, matrixRoom, xmppRoom } from "../../helpers/fixtures.js";

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

describe("LinkStore - an adapter's linked conversations", () => {
  it("LinkStore - endpointsOf gives one network instance's conversations, each with its link", async () => {
    const store = new LinkStore(new MemoryKeyValue());
    await store.start();
    await store.create(crossBorderLink);
    await store.create({
      id: "zweiter",
      endpoints: [
        { ...xmppRoom, conversation: "zwei@conference.bpol" },
        { ...matrixRoom, instance: "other", conversation: "!zwei:example.org" },
      ],
    });
    const own = store.endpointsOf(xmppRoom.network, xmppRoom.instance);
    expect(own.map(({ link, endpoint }) => [link.id, endpoint.conversation])).toEqual([
      [crossBorderLink.id, xmppRoom.conversation],
      ["zweiter", "zwei@conference.bpol"],
    ]);
    expect(store.endpointsOf(matrixRoom.network, "other").map((e) => e.endpoint.conversation)).toEqual([
      "!zwei:example.org",
    ]);
    expect(store.endpointsOf("stashcat", "nowhere")).toEqual([]);
    store.stop();
  });
});

describe("LinkStore - changing a link's conversations", () => {
  const room = {
    network: "matrix",
    instance: "other",
    conversation: "!added:example.org",
    agency: "dinum-mi",
  };

  it("LinkStore - addEndpoint joins a conversation to a link, and refuses one that is linked already", async () => {
    const kv = new MemoryKeyValue();
    const store = new LinkStore(kv);
    await store.start();
    await store.create(crossBorderLink);
    const changed = await store.addEndpoint(crossBorderLink.id, room);
    expect(changed.endpoints).toHaveLength(crossBorderLink.endpoints.length + 1);
    expect(store.match(room)?.link.id).toBe(crossBorderLink.id);
    // Another replica sees it from the store.
    expect((await new LinkStore(kv).resolve(room))?.link.endpoints).toHaveLength(changed.endpoints.length);
    await expect(store.addEndpoint(crossBorderLink.id, room)).rejects.toMatchObject({
      code: "FG_LINK_CONFLICT",
    });
    await expect(
      store.addEndpoint("no-such-link", { ...room, conversation: "!x:example.org" }),
    ).rejects.toMatchObject({ code: "FG_LINK_NOT_FOUND" });
    // The failed attempt released its claim: the conversation can still be linked.
    expect(
      (await store.addEndpoint(crossBorderLink.id, { ...room, conversation: "!x:example.org" })).id,
    ).toBe(crossBorderLink.id);
    store.stop();
  });

  it("LinkStore - removeEndpoint takes a conversation out, and removes a link left with one", async () => {
    const store = new LinkStore(new MemoryKeyValue());
    await store.start();
    await store.create(crossBorderLink);
    await store.addEndpoint(crossBorderLink.id, room);
    const remaining = await store.removeEndpoint(room);
    expect(remaining?.endpoints).toHaveLength(crossBorderLink.endpoints.length);
    expect(store.match(room)).toBeUndefined();
    await expect(store.removeEndpoint(room)).rejects.toMatchObject({ code: "FG_LINK_NOT_FOUND" });
    // Down to two conversations, removing one leaves nothing to bridge: the link goes.
    for (const endpoint of crossBorderLink.endpoints.slice(2)) await store.removeEndpoint(endpoint);
    const [first] = crossBorderLink.endpoints;
    expect(await store.removeEndpoint(first)).toBeUndefined();
    expect(store.get(crossBorderLink.id)).toBeUndefined();
    store.stop();
  });
});

describe("LinkStore - direct chats are two people's alone", () => {
  const claire = { network: "matrix", instance: "tchap", userId: "@claire:tchap.localhost" };
  const weber = { network: "xmpp", instance: "bpol", userId: "weber@bpol.localhost" };
  const dm = directLink(claire, "dinum-mi", weber, "bpol");
  const eveRoom = {
    network: "matrix",
    instance: "tchap",
    conversation: "!eve:tchap.localhost",
    agency: "dinum-mi",
  };

  it("LinkStore - a direct link takes no other conversation, whoever asks", async () => {
    const kv = new MemoryKeyValue();
    const store = new LinkStore(kv);
    await store.start();
    await store.create(dm);
    await expect(store.addEndpoint(dm.id, eveRoom)).rejects.toMatchObject({ code: "FG_LINK_CONFLICT" });
    await expect(store.addEndpoint(dm.id, { ...eveRoom, kind: "direct" })).rejects.toMatchObject({
      code: "FG_LINK_INVALID",
    });
    expect(store.get(dm.id)?.endpoints).toHaveLength(2);
    // The refused conversation was not left claimed.
    expect(await new LinkStore(kv).resolve(eveRoom)).toBeUndefined();
    await store.create(crossBorderLink);
    expect((await store.addEndpoint(crossBorderLink.id, eveRoom)).endpoints).toHaveLength(4);
    store.stop();
  });

  it("LinkStore - a direct endpoint joins no room link, and a dm- link is exactly two direct endpoints", async () => {
    const store = new LinkStore(new MemoryKeyValue());
    await store.start();
    await store.create(crossBorderLink);
    await expect(store.addEndpoint(crossBorderLink.id, { ...eveRoom, kind: "direct" })).rejects.toMatchObject(
      { code: "FG_LINK_INVALID" },
    );
    const [first, second] = dm.endpoints;
    for (const malformed of [
      { ...dm, endpoints: [...dm.endpoints, eveRoom] },
      { ...dm, endpoints: [first, { ...second, kind: "room" }] },
      { id: "not-a-dm", endpoints: dm.endpoints },
      { id: "dm-squatted", endpoints: [xmppRoom, matrixRoom] },
    ])
      await expect(store.create(malformed)).rejects.toMatchObject({ code: "FG_LINK_INVALID" });
    expect(store.list().map((l) => l.id)).toEqual([crossBorderLink.id]);
    store.stop();
  });

  it("LinkStore - a link ordered by a partner gateway shares the conversation with that gateway alone", async () => {
    const store = new LinkStore(new MemoryKeyValue());
    await store.start();
    const shared = (instance: string) => ({
      network: "federation",
      instance,
      conversation: "lage",
      agency: "bpol",
    });
    for (const refused of [
      { id: "nobody", orderedBy: "de", endpoints: [xmppRoom, matrixRoom] },
      { id: "elsewhere", orderedBy: "it", endpoints: [matrixRoom, shared("de")] },
      { id: "two", orderedBy: "de", endpoints: [matrixRoom, shared("de"), shared("it")] },
    ])
      await expect(store.create(refused)).rejects.toMatchObject({
        code: "FG_LINK_INVALID",
        message: expect.stringContaining(`ordered by gateway ${refused.orderedBy}`) as unknown,
      });
    const link = await store.create({ id: "lage", orderedBy: "de", endpoints: [matrixRoom, shared("de")] });
    expect(link.orderedBy).toBe("de");
    await expect(store.addEndpoint("lage", shared("it"))).rejects.toMatchObject({ code: "FG_LINK_INVALID" });
    expect((await store.addEndpoint("lage", xmppRoom)).endpoints).toHaveLength(3);
    store.stop();
  });
});
