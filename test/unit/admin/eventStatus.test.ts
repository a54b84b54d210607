import { describe, expect, it } from "vitest";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { MessageMap } from "../../../gateway/platform/stores/MessageMap.js";
import { DeliveryLedger } from "../../../gateway/core/routing/DeliveryLedger.js";
import { eventStatus, type EventStatusSources } from "../../../gateway/core/admin/eventStatus.js";
import { crossBorderLink } from "../../helpers/fixtures.js";
import { FedgateError } from "../../../schemas/contract/errors.js";

const source = "xmpp/bpol/lage@conference.bpol.localhost";
const stashcat = "stashcat/ni/channel:1001";
const matrix = "matrix/tchap/!lage:tchap.localhost";

async function sources(): Promise<EventStatusSources> {
  const links = new LinkStore(new MemoryKeyValue());
  await links.start();
  await links.create(crossBorderLink);
  return {
    ledger: new DeliveryLedger(new MemoryKeyValue()),
    messages: new MessageMap(new MemoryKeyValue()),
    links,
  };
}

async function notFound(status: Promise<unknown>): Promise<string | undefined> {
  try {
    await status;
    return undefined;
  } catch (error) {
    return error instanceof FedgateError ? error.code : String(error);
  }
}

describe("event status - read from the ledger, the message map and the links", () => {
  it("event status - delivered, failed, pending and denied targets, each with its agency", async () => {
    const s = await sources();
    await s.ledger.record("event-0001", {
      author: "xmpp/bpol/alice",
      source,
      marking: "DE-VS-NFD",
      reached: [source, stashcat, "xmpp/bpol/gone@conference"],
      withheld: [matrix],
      at: Date.parse("2026-12-07T10:00:00Z"),
      type: "message.edited",
      denied: { [matrix]: "marking-above-route" },
    });
    await s.ledger.recordOutcome("event-0001", "xmpp/bpol/gone@conference", {
      state: "failed",
      code: "FG_PEER_REFUSED",
      failedAt: "2026-12-07T10:00:05.000Z",
    });
    const status = await eventStatus(s, "event-0001");
    expect(status).toEqual({
      eventId: "event-0001",
      eventType: "message.edited",
      source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol.localhost" },
      marking: "DE-VS-NFD",
      decidedAt: "2026-12-07T10:00:00.000Z",
      targets: [
        {
          target: { network: "stashcat", instance: "ni", conversation: "channel:1001" },
          agency: "polizei-ni",
          decision: "deliver",
          reason: "allowed",
          decidedAt: "2026-12-07T10:00:00.000Z",
          delivery: { state: "pending" },
        },
        {
          // Linked no more: no agency to name.
          target: { network: "xmpp", instance: "bpol", conversation: "gone@conference" },
          decision: "deliver",
          reason: "allowed",
          decidedAt: "2026-12-07T10:00:00.000Z",
          delivery: { state: "failed", code: "FG_PEER_REFUSED", failedAt: "2026-12-07T10:00:05.000Z" },
        },
        {
          target: { network: "matrix", instance: "tchap", conversation: "!lage:tchap.localhost" },
          agency: "dinum-mi",
          decision: "deny",
          reason: "marking-above-route",
          decidedAt: "2026-12-07T10:00:00.000Z",
        },
      ],
    });
    // Once the bridge records the message it made, the delivery is delivered, whatever failed before.
    await s.messages.record(
      "event-0001",
      { network: "xmpp", instance: "bpol", conversation: "gone@conference" },
      "n-1",
    );
    const again = await eventStatus(s, "event-0001");
    expect(again.targets[1]?.delivery).toEqual({ state: "delivered" });
    expect(JSON.stringify(again)).not.toContain("n-1");
  });

  it("event status - an entry from before the ledger kept decisions says where the message came from, no more", async () => {
    const s = await sources();
    await s.ledger.record("event-0002", {
      author: "xmpp/bpol/alice",
      source,
      reached: [source, stashcat],
      withheld: [],
    });
    expect(await eventStatus(s, "event-0002")).toEqual({
      eventId: "event-0002",
      source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol.localhost" },
      targets: [],
    });
  });

  it("event status - an unknown id, or one that is no event id, is FG_EVENT_NOT_FOUND", async () => {
    const s = await sources();
    for (const id of ["event-0003", "short", "x".repeat(65), "a.b.c.d.e.f", "../../e"])
      expect(await notFound(eventStatus(s, id)), id).toBe("FG_EVENT_NOT_FOUND");
  });
});
