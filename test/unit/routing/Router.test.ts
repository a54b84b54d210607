import { readFile } from "node:fs/promises";
import { beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { AuditRecord, Delivery, NormalisedEvent, Policy } from "../../../schemas/types.js";
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
    const ledger = new DeliveryLedger(await bus.keyValue("deliveries"));
    router = new Router({ bus, links, identities, ledger, policy: () => policy, log });
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

  describe("Router - relations: an edit, reply, reaction or deletion follows its original", () => {
    const claire = { userId: "@claire:tchap.localhost", displayName: "Claire Martin" };
    const weber = { userId: "weber@bpol.localhost", displayName: "Kommissarin Weber" };

    /** Routes `event` from `from`, and returns what each target got and why not. */
    async function routeFrom(from: typeof xmppRoom, event: NormalisedEvent): Promise<Record<string, string>> {
      await route(event, subjects.inbound(from));
      const outcome: Record<string, string> = {};
      for (const record of [...audited(bus, "deliver"), ...audited(bus, "deny")])
        if (record.eventId === event.id && record.target !== undefined)
          outcome[record.target.network] = record.reason;
      return outcome;
    }

    function related(
      from: typeof xmppRoom,
      sender: typeof claire,
      extra: Partial<NormalisedEvent>,
    ): NormalisedEvent {
      return message(from, "", { sender, ...extra });
    }

    it("Router - an unmarked edit of a marked message is the original's marking: denied where the original was", async () => {
      const original = message(matrixRoom, "Lagebild", { sender: claire, marking: "FR-DR" });
      expect(await routeFrom(matrixRoom, original)).toEqual({
        xmpp: "allowed",
        stashcat: "marking-above-route",
      });
      // Element does not copy the marking into m.new_content.
      const edit = related(matrixRoom, claire, {
        type: "message.edited",
        content: { body: "Lagebild, korrigiert" },
        relations: { replaces: original.id },
      });
      expect(await routeFrom(matrixRoom, edit)).toEqual({
        xmpp: "allowed",
        stashcat: "relation-not-delivered",
      });
      const [toXmpp] = decoded<Delivery>(bus, subjects.outbound("xmpp", "bpol")).filter(
        (d) => d.event.id === edit.id,
      );
      // Shown as the target's country marks it.
      expect(toXmpp?.marking).toMatchObject({ id: "DE-VS-NFD", original: "FR-DR" });
      expect(
        bus
          .messages(subjects.outbound("stashcat", "ni"))
          .filter((m) => Buffer.from(m.data).toString().includes(edit.id)),
      ).toHaveLength(0);
    });

    it("Router - a reply to a message its marking withheld from a target is withheld from it too, and carries the marking", async () => {
      const original = message(matrixRoom, "Lagebild", { sender: claire, marking: "FR-DR" });
      await routeFrom(matrixRoom, original);
      const reply = related(xmppRoom, weber, {
        content: { body: "Verstanden" },
        relations: { replyTo: original.id },
      });
      expect(await routeFrom(xmppRoom, reply)).toEqual({ matrix: "allowed", stashcat: "relation-withheld" });
      const [toMatrix] = decoded<Delivery>(bus, subjects.outbound("matrix", "tchap")).filter(
        (d) => d.event.id === reply.id,
      );
      expect(toMatrix?.marking?.id).toBe("FR-DR");
      // A reply to that reply is withheld as well.
      const second = related(matrixRoom, claire, {
        content: { body: "Danke" },
        relations: { replyTo: reply.id },
      });
      expect(await routeFrom(matrixRoom, second)).toEqual({ xmpp: "allowed", stashcat: "relation-withheld" });
    });

    it("Router - a reaction or deletion reaches only the conversations that hold the original", async () => {
      // Files do not go from Tchap to Stashcat (text only): the original reaches XMPP alone.
      const picture = message(matrixRoom, "", {
        sender: claire,
        content: {
          attachments: [
            {
              name: "lage.png",
              mediaType: "image/png",
              size: 10,
              sha256: "0".repeat(64),
              url: "https://files.example/lage.png",
            },
          ],
        },
      });
      expect(await routeFrom(matrixRoom, picture)).toEqual({
        xmpp: "allowed",
        stashcat: "attachments-not-allowed",
      });
      const reaction = related(xmppRoom, weber, {
        type: "reaction.added",
        content: { reaction: "👍" },
        relations: { reactsTo: picture.id },
      });
      expect(await routeFrom(xmppRoom, reaction)).toEqual({
        matrix: "allowed",
        stashcat: "relation-not-delivered",
      });
      const deletion = related(matrixRoom, claire, {
        type: "message.deleted",
        relations: { redacts: picture.id },
      });
      delete deletion.content;
      expect(await routeFrom(matrixRoom, deletion)).toEqual({
        xmpp: "allowed",
        stashcat: "relation-not-delivered",
      });
    });

    it("Router - only the author edits; someone else's deletion counts only where the original was written", async () => {
      const original = message(xmppRoom, "Treffpunkt 10 Uhr", { sender: weber });
      await routeFrom(xmppRoom, original);
      const forged = related(
        xmppRoom,
        { userId: "mallory@bpol.localhost", displayName: "Mallory" },
        {
          type: "message.edited",
          content: { body: "Treffpunkt abgesagt" },
          relations: { replaces: original.id },
        },
      );
      expect(await routeFrom(xmppRoom, forged)).toEqual({ matrix: "not-author", stashcat: "not-author" });
      // A Tchap moderator redacts the bridged copy in their room: that stays in their room.
      const elsewhere = related(matrixRoom, claire, {
        type: "message.deleted",
        relations: { redacts: original.id },
      });
      delete elsewhere.content;
      expect(await routeFrom(matrixRoom, elsewhere)).toEqual({ xmpp: "not-author", stashcat: "not-author" });
      // A moderator of the room where it was written (the server vouches for them): everywhere.
      const moderated = related(
        xmppRoom,
        { userId: "moderator@bpol.localhost", displayName: "Moderator" },
        { type: "message.deleted", relations: { redacts: original.id } },
      );
      delete moderated.content;
      expect(await routeFrom(xmppRoom, moderated)).toEqual({ matrix: "allowed", stashcat: "allowed" });
    });

    it("Router - an edit of a message fedgate does not know is not guessed: it goes as a new message, marked", async () => {
      const edit = related(xmppRoom, weber, {
        type: "message.edited",
        content: { body: "korrigiert" },
        relations: { replaces: "unknown-event-0001" },
      });
      expect(await routeFrom(xmppRoom, edit)).toEqual({ matrix: "allowed", stashcat: "allowed" });
      const copies = decoded<Delivery>(bus, subjects.outboundAll).filter((d) => d.event.id === edit.id);
      expect(copies.map((d) => [d.event.type, d.event.content?.body, d.event.relations])).toEqual([
        ["message.created", "(edit of an earlier message) korrigiert", undefined],
        ["message.created", "(edit of an earlier message) korrigiert", undefined],
      ]);
    });
  });
});
