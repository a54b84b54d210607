import { readFile } from "node:fs/promises";
import { beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { AuditRecord, Delivery, Policy } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/bus/MemoryBus.js";
import { subjects } from "../../../gateway/contract/subjects.js";
import { createLogger } from "../../../gateway/log.js";
import { PolicyEngine } from "../../../gateway/policy/PolicyEngine.js";
import { Router } from "../../../gateway/routing/Router.js";
import { IdentityStore } from "../../../gateway/stores/IdentityStore.js";
import { encodeJson } from "../../../gateway/stores/KeyValueStore.js";
import { LinkStore } from "../../../gateway/stores/LinkStore.js";
import {
  auditRecordsIn,
  crossBorderLink,
  examplePolicyFile,
  matrixRoom,
  message,
  stashcatChannel,
  xmppRoom,
} from "../../helpers/fixtures.js";

const log = createLogger("silent");

function audited(bus: MemoryBus, decision: "deliver" | "deny"): AuditRecord[] {
  return bus.messages(subjects.audit(decision)).flatMap((m) => auditRecordsIn(m.data));
}

function decoded<T>(bus: MemoryBus, filter: string): T[] {
  return bus.messages(filter).map((m) => JSON.parse(Buffer.from(m.data).toString()) as T);
}

describe("Router - decisions on the in-memory bus", () => {
  let bus: MemoryBus;
  let router: Router;
  let identities: IdentityStore;
  let policy: PolicyEngine;

  beforeEach(async () => {
    bus = new MemoryBus();
    await bus.ensureTopology();
    const links = new LinkStore(await bus.keyValue("links"));
    identities = new IdentityStore(await bus.keyValue("identities"));
    await Promise.all([links.start(), identities.start()]);
    await links.create(crossBorderLink);
    policy = await PolicyEngine.fromFile(examplePolicyFile);
    router = new Router({ bus, links, identities, policy: () => policy, log });
  });

  async function route(event: object, subject = subjects.inbound(xmppRoom)): Promise<void> {
    await router.handle({ subject, data: encodeJson(event), headers: {}, deliveryCount: 1, seq: 1 });
  }

  it("Router - an allowed event becomes one delivery per other endpoint, each on its own subject", async () => {
    await route(message(xmppRoom, "hallo"));
    const toMatrix = decoded<Delivery>(bus, subjects.outbound("matrix", "tchap"));
    const toStashcat = decoded<Delivery>(bus, subjects.outbound("stashcat", "ni"));
    expect(toMatrix.map((d) => d.target)).toEqual([matrixRoom]);
    expect(toStashcat.map((d) => d.target)).toEqual([stashcatChannel]);
    expect(bus.messages(subjects.outbound("xmpp", "bpol"))).toHaveLength(0);
    expect(audited(bus, "deliver")).toHaveLength(2);
  });

  it("Router - a puppet's own message is never bridged back (echo)", async () => {
    await identities.record(
      { network: "matrix", instance: "tchap", userId: "@claire:tchap" },
      { network: "xmpp", instance: "bpol", userId: "claire@bridge.bpol" },
    );
    await route(message(xmppRoom, "echo", { sender: { userId: "claire@bridge.bpol" } }));
    expect(bus.messages(subjects.outboundAll)).toHaveLength(0);
    const [record] = audited(bus, "deny");
    expect(record?.reason).toBe("echo");
  });

  it("Router - a denied membership change is audited but not announced to the sender", async () => {
    const example = parse(await readFile(examplePolicyFile, "utf8")) as Policy;
    policy = new PolicyEngine({ agencies: example.agencies, routes: [] });
    const join = message(xmppRoom, "", { type: "member.joined" });
    delete join.content;
    await route(join);
    expect(audited(bus, "deny").map((r) => r.reason)).toEqual(["no-route", "no-route"]);
    expect(bus.messages(subjects.outboundAll)).toHaveLength(0);
  });

  it("Router - the policy in force is read per event, so a reload applies to the next event", async () => {
    await route(message(xmppRoom, "before"));
    policy = new PolicyEngine({
      agencies: [{ id: "bpol", country: "DE", name: "BPOL", network: "xmpp", instance: "bpol" }],
      routes: [],
    });
    await route(message(xmppRoom, "after"));
    expect(audited(bus, "deliver")).toHaveLength(2);
    expect(audited(bus, "deny").map((r) => r.reason)).toEqual(["agency-unknown", "agency-unknown"]);
  });
});
