/**
 * Relations to a message the core no longer knows (its ledger entry is past the message horizon, or it never
 * routed it): the core cannot tell a forgotten original from a made-up id, so what relates to one gets no more
 * than a plain message would, and its sender is never told off for it.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { AuditRecord, Delivery, Endpoint, NormalisedEvent } from "../../../schemas/types.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
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
  matrixRoom,
  message,
  xmppRoom,
} from "../../helpers/fixtures.js";

const log = createLogger("silent");
const DAY = 24 * 60 * 60 * 1000;
const HORIZON = 30 * DAY;
const weber = { userId: "weber@bpol.localhost", displayName: "Kommissarin Weber" };
const claire = { userId: "@claire:tchap.localhost", displayName: "Claire Martin" };

describe("Router - relations to a message past the horizon", () => {
  let bus: MemoryBus;
  let router: Router;
  let now: number;

  beforeEach(async () => {
    bus = new MemoryBus();
    await bus.ensureTopology();
    const links = new LinkStore(await bus.keyValue("links"));
    const identities = new IdentityStore(await bus.keyValue("identities"));
    await Promise.all([links.start(), identities.start()]);
    await links.create(crossBorderLink);
    const policy = await PolicyEngine.fromFile(examplePolicyFile);
    now = Date.parse("2025-03-01T08:00:00Z");
    const ledger = new DeliveryLedger(new MemoryKeyValue(HORIZON, () => now));
    router = new Router({ bus, links, identities, ledger, policy: () => policy, log });
  });

  async function route(from: Endpoint, event: NormalisedEvent): Promise<void> {
    await router.handle({
      subject: subjects.inbound(from),
      data: encodeJson(event),
      headers: {},
      deliveryCount: 1,
      seq: 1,
    });
  }

  function audited(eventId: string): AuditRecord[] {
    return bus
      .messages(subjects.auditAll)
      .flatMap((m) => auditRecordsIn(m.data))
      .filter((r) => r.eventId === eventId);
  }

  /** Per target network, the reason of the decision on `eventId`. */
  function outcome(eventId: string): Record<string, string> {
    return Object.fromEntries(audited(eventId).map((r) => [r.target?.network ?? "", r.reason]));
  }

  function delivered(eventId: string): Delivery[] {
    return bus
      .messages(subjects.outboundAll)
      .map((m) => JSON.parse(Buffer.from(m.data).toString()) as Delivery)
      .filter((d) => d.event.id === eventId);
  }

  /** The notices that tell the sender of `eventId` it was not delivered somewhere. */
  function notices(eventId: string): Delivery[] {
    return bus
      .messages(subjects.outboundAll)
      .map((m) => JSON.parse(Buffer.from(m.data).toString()) as Delivery)
      .filter((d) => d.event.type === "notice" && d.event.relations?.replyTo === eventId);
  }

  /** A message routed, and then the horizon passed. */
  async function forgotten(from: Endpoint, sender: typeof weber, extra: Partial<NormalisedEvent> = {}) {
    const original = message(from, "Treffpunkt 10 Uhr", { sender, ...extra });
    await route(from, original);
    now += HORIZON + DAY;
    return original;
  }

  it("Router - an edit of a forgotten message reaches everyone as a new message from its sender, marked as an edit, and nobody is told off", async () => {
    const original = await forgotten(xmppRoom, weber);
    const edit = message(xmppRoom, "Treffpunkt 11 Uhr", {
      sender: weber,
      type: "message.edited",
      relations: { replaces: original.id },
    });
    await route(xmppRoom, edit);
    expect(outcome(edit.id)).toEqual({ matrix: "allowed", stashcat: "allowed" });
    const copies = delivered(edit.id);
    expect(copies).toHaveLength(2);
    for (const { event } of copies) {
      expect(event.type).toBe("message.created");
      expect(event.relations).toBeUndefined();
      expect(event.sender).toEqual(weber);
      expect(event.content?.body).toBe("(edit of an earlier message) Treffpunkt 11 Uhr");
    }
    // The audit says why it went as a new message.
    expect(audited(edit.id).map((r) => r.detail)).toEqual([
      expect.stringMatching(/not known/),
      expect.stringMatching(/not known/),
    ]);
    expect(notices(edit.id)).toEqual([]);
  });

  it("Router - an 'edit' of an unknown id by anyone gives them no more than a plain message: their own, judged on its own marking", async () => {
    const original = await forgotten(matrixRoom, claire, { marking: "FR-DR" });
    // Someone else, without the original's marking: where a plain message of theirs goes, this goes; no further.
    const edit = message(matrixRoom, "Treffpunkt abgesagt", {
      sender: { userId: "@mallory:tchap.localhost", displayName: "Mallory" },
      type: "message.edited",
      relations: { replaces: original.id },
    });
    await route(matrixRoom, edit);
    const plain = message(matrixRoom, "Treffpunkt abgesagt", {
      sender: { userId: "@mallory:tchap.localhost", displayName: "Mallory" },
    });
    await route(matrixRoom, plain);
    expect(outcome(edit.id)).toEqual(outcome(plain.id));
    for (const { event, marking } of delivered(edit.id)) {
      expect(event.sender.userId).toBe("@mallory:tchap.localhost");
      expect(marking).toBeUndefined();
    }
    // Marked as the original was, it is kept from where a plain message so marked is kept.
    const marked = message(matrixRoom, "Treffpunkt 11 Uhr", {
      sender: claire,
      type: "message.edited",
      marking: "FR-DR",
      relations: { replaces: original.id },
    });
    await route(matrixRoom, marked);
    expect(outcome(marked.id)).toEqual({ xmpp: "allowed", stashcat: "marking-above-route" });
  });

  it("Router - a reaction to a forgotten message is dropped with a reason of its own, audited, and nobody is told off", async () => {
    const original = await forgotten(xmppRoom, weber);
    const reaction = message(matrixRoom, "", {
      sender: claire,
      type: "reaction.added",
      content: { reaction: "👍" },
      relations: { reactsTo: original.id },
    });
    await route(matrixRoom, reaction);
    expect(outcome(reaction.id)).toEqual({ xmpp: "relation-forgotten", stashcat: "relation-forgotten" });
    expect(delivered(reaction.id)).toEqual([]);
    expect(notices(reaction.id)).toEqual([]);
  });

  it("Router - a deletion of a forgotten message has nothing to act on: audited, not delivered", async () => {
    const original = await forgotten(xmppRoom, weber);
    const deletion = message(xmppRoom, "", {
      sender: weber,
      type: "message.deleted",
      relations: { redacts: original.id },
    });
    delete deletion.content;
    await route(xmppRoom, deletion);
    expect(outcome(deletion.id)).toEqual({ matrix: "relation-forgotten", stashcat: "relation-forgotten" });
    expect(delivered(deletion.id)).toEqual([]);
  });

  it("Router - a reply to a forgotten message is delivered as a plain message, without the relation or the original's marking", async () => {
    const original = await forgotten(matrixRoom, claire, { marking: "FR-DR" });
    const reply = message(xmppRoom, "Verstanden", { sender: weber, relations: { replyTo: original.id } });
    await route(xmppRoom, reply);
    expect(outcome(reply.id)).toEqual({ matrix: "allowed", stashcat: "allowed" });
    for (const { event, marking } of delivered(reply.id)) {
      expect(event.relations).toBeUndefined();
      expect(event.content).toEqual({ body: "Verstanden" });
      expect(marking).toBeUndefined();
    }
    expect(notices(reply.id)).toEqual([]);
  });

  it("Router - before the horizon nothing changes: the known original still decides", async () => {
    const original = message(matrixRoom, "Lagebild", { sender: claire, marking: "FR-DR" });
    await route(matrixRoom, original);
    now += HORIZON - DAY;
    const reply = message(xmppRoom, "Verstanden", { sender: weber, relations: { replyTo: original.id } });
    await route(xmppRoom, reply);
    expect(outcome(reply.id)).toEqual({ matrix: "allowed", stashcat: "relation-withheld" });
  });
});
