import { beforeEach, expect, it } from "vitest";
import type { Delivery } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { PolicyEngine } from "../../../gateway/core/policy/PolicyEngine.js";
import { Router } from "../../../gateway/core/routing/Router.js";
import { DeliveryLedger } from "../../../gateway/core/routing/DeliveryLedger.js";
import { IdentityStore } from "../../../gateway/platform/stores/IdentityStore.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import {
  auditRecordsIn,
  crossBorderLink,
  examplePolicyFile,
  message,
  xmppRoom,
} from "../../helpers/fixtures.js";

let bus: MemoryBus;
let links: LinkStore;
let router: Router;

beforeEach(async () => {
  bus = new MemoryBus();
  await bus.ensureTopology();
  links = new LinkStore(await bus.keyValue("links"));
  const identities = new IdentityStore(await bus.keyValue("identities"));
  await Promise.all([links.start(), identities.start()]);
  await links.create(crossBorderLink);
  const policy = await PolicyEngine.fromFile(examplePolicyFile);
  const ledger = new DeliveryLedger(await bus.keyValue("deliveries"));
  router = new Router({ bus, links, identities, ledger, policy: () => policy, log: createLogger("silent") });
});

async function route(body: string): Promise<void> {
  const event = message(xmppRoom, body);
  await router.handle({
    subject: subjects.inbound(xmppRoom),
    data: encodeJson(event),
    headers: {},
    deliveryCount: 1,
    seq: 1,
  });
}

it("Router - a paused link delivers nothing: each target is denied as link-paused and the sender told", async () => {
  await links.setState(crossBorderLink.id, "paused");
  await route("while paused");
  const denied = bus.messages(subjects.audit("deny")).flatMap((m) => auditRecordsIn(m.data));
  expect(denied.map((r) => r.reason)).toEqual(["link-paused", "link-paused"]);
  expect(denied.every((r) => r.linkId === crossBorderLink.id)).toBe(true);
  const toSender = bus
    .messages(subjects.outbound(xmppRoom.network, xmppRoom.instance))
    .map((m) => JSON.parse(Buffer.from(m.data).toString()) as Delivery);
  expect(toSender).toHaveLength(1);
  expect(toSender[0]?.event.type).toBe("notice");
  expect(toSender[0]?.event.content?.body).toMatch(/link is paused.*\(link-paused\)/);
  expect(bus.messages(subjects.outboundAll)).toHaveLength(1);

  await links.setState(crossBorderLink.id, "active");
  await route("resumed");
  const delivered = bus.messages(subjects.audit("deliver")).flatMap((m) => auditRecordsIn(m.data));
  expect(delivered).toHaveLength(2);
});
