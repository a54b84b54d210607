/**
 * Markings end to end, through the whole demo federation (nats-server, Prosody, Synapse, the Stashcat-compatible
 * server, the gateway and all three bridges): a Tchap official's message marked Diffusion Restreinte is denied to
 * Stashcat by the policy, and an edit of it made the way Element makes one (without the marking in
 * `m.new_content`) must not slip through to Stashcat either. The room is encrypted, as the demo's is: the
 * official writes with a client that encrypts.
 */
import { describe, expect, it, vi } from "vitest";
import { EventType } from "matrix-js-sdk";
import { DemoFederation } from "../harness/demo/demoFederation.js";
import { createLogger } from "../../gateway/platform/log.js";
import {
  demoConversation,
  demoGateway,
  demoOfficer,
  demoServersAvailable,
  followAudit,
  tchapOfficialClient,
} from "../helpers/demoScenes.js";
import { eventually } from "../helpers/fixtures.js";
import { scratchDir } from "../helpers/scratchDir.js";

const log = createLogger("silent");
// The official's client logs every sync and key request, and its Rust crypto traces at debug level, to the console.
for (const level of ["debug", "info"] as const) vi.spyOn(console, level).mockImplementation(() => undefined);
const available = await demoServersAvailable();

describe.skipIf(!available)("markings - end to end through the demo federation", () => {
  it("markings - an unmarked edit of a Diffusion Restreinte message reaches XMPP marked, and Stashcat never", async () => {
    const demo = await DemoFederation.start(log, await scratchDir("markings-test"));
    try {
      const { description } = demo;
      // What reaches XMPP and Stashcat is Germany's gateway's to decide.
      const deAudit = await followAudit(demoGateway(description, "xmpp"), log);
      const audit = deAudit.records;
      const official = description.accounts.find((a) => a.network === "matrix");
      const room = demoConversation(description, "matrix");
      if (official === undefined) throw new Error("the demo printed no Tchap account");
      // The demo's Tchap room is encrypted: the marking travels inside the ciphertext, and the bridge reads
      // it once it has decrypted the event.
      const claire = await tchapOfficialClient(official);
      const { event_id: originalId } = await claire.sendEvent(room, EventType.RoomMessage, {
        msgtype: "m.text",
        body: "Lagebild: Zugriff um 6 Uhr",
        "eu.fedgate.marking": "FR-DR",
      } as never);
      expect(claire.getRoom(room)?.findEventById(originalId)?.getWireType()).toBe("m.room.encrypted");
      // Element's edit: the marking stays on the original only.
      await claire.sendEvent(room, EventType.RoomMessage, {
        msgtype: "m.text",
        body: "* Lagebild: Zugriff um 5 Uhr",
        "m.new_content": { msgtype: "m.text", body: "Lagebild: Zugriff um 5 Uhr" },
        "m.relates_to": { rel_type: "m.replace", event_id: originalId },
      } as never);

      const decided = (type: string): Record<string, string> | undefined => {
        const records = audit.filter(
          (r) => r.eventType === type && r.source.network === "federation" && r.target,
        );
        if (records.length < 2) return undefined;
        return Object.fromEntries(records.map((r) => [r.target?.network ?? "", `${r.decision} ${r.reason}`]));
      };
      expect(await eventually(() => decided("message.created"), 30_000, "the original's decisions")).toEqual({
        xmpp: "deliver allowed",
        stashcat: "deny marking-above-route",
      });
      expect(await eventually(() => decided("message.edited"), 30_000, "the edit's decisions")).toEqual({
        xmpp: "deliver allowed",
        stashcat: "deny relation-not-delivered",
      });
      // The edit reached XMPP with the original's marking.
      const editToXmpp = audit.find((r) => r.eventType === "message.edited" && r.target?.network === "xmpp");
      expect(editToXmpp?.marking).toBe("FR-DR");

      // Nothing of either reached the Stashcat channel.
      const meyer = await demoOfficer(description, log);
      const channel = await meyer.read({ type: "channel", id: 1001 });
      expect(channel.some((m) => m.plain.includes("Lagebild"))).toBe(false);
      claire.stopClient();
      await deAudit.close();
    } finally {
      await demo.stop();
    }
  });
});
