import { describe, expect, it } from "vitest";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { IdentityStore } from "../../../gateway/platform/stores/IdentityStore.js";

describe("IdentityStore - who stands for whom", () => {
  it("IdentityStore - a recorded puppet is found both ways, and survives a restart of the store", async () => {
    const kv = new MemoryKeyValue();
    const store = new IdentityStore(kv);
    await store.start();
    const remote = {
      network: "matrix",
      instance: "tchap",
      userId: "@claire.martin:tchap.example",
      displayName: "Claire Martin",
      agency: "dinum-mi",
    };
    const puppet = {
      network: "xmpp",
      instance: "bpol",
      userId: "claire.martin\\40tchap.example@bridge.bpol.example",
    };
    await store.record(remote, puppet);
    expect(await store.puppetFor(remote, "xmpp", "bpol")).toBe(puppet.userId);
    expect(await store.puppetFor(remote, "stashcat", "ni")).toBeUndefined();
    expect(await store.remoteFor(puppet)).toEqual(remote);
    expect(store.isPuppet(puppet)).toBe(true);
    expect(store.isPuppet({ ...puppet, userId: "someone@bpol.example" })).toBe(false);

    // Another replica, starting later, knows the puppet from the bucket alone.
    const other = new IdentityStore(kv);
    await other.start();
    expect(other.isPuppet(puppet)).toBe(true);
  });

  it("IdentityStore - recording the same puppet again writes nothing; a change is written", async () => {
    const kv = new MemoryKeyValue();
    let puts = 0;
    const put = kv.put.bind(kv);
    kv.put = (key, value) => {
      puts++;
      return put(key, value);
    };
    const store = new IdentityStore(kv);
    const remote = {
      network: "matrix",
      instance: "tchap",
      userId: "@claire:tchap.example",
      agency: "dinum-mi",
    };
    const puppet = { network: "xmpp", instance: "bpol", userId: "claire@bridge.bpol.example" };
    await store.record(remote, puppet);
    const afterFirst = puts;
    await store.record({ ...remote }, puppet);
    expect(puts).toBe(afterFirst);
    await store.record({ ...remote, displayName: "Claire Martin" }, puppet);
    expect(puts).toBeGreaterThan(afterFirst);
    expect((await store.remoteFor(puppet))?.displayName).toBe("Claire Martin");
  });
});
