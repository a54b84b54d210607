/**
 * What becomes of a delivery, against a real nats-server and the real core: a delivery the target's bridge
 * fails for good is told to the sender once, as a denial is, and GET /v1/events/{id} reports each target's
 * decision and delivery outcome. The bridges are fakes on the kit; Stashcat's refuses what it is told to.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  DeadLetter,
  Delivery,
  Endpoint,
  EventStatus,
  Link,
  NormalisedEvent,
} from "../../schemas/types.js";
import type { BusMessage } from "../../gateway/platform/bus/Bus.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { loadConfig } from "../../gateway/platform/config/loadConfig.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { validatorFor } from "../../schemas/contract/schemas.js";
import { GatewayService } from "../../gateway/core/GatewayService.js";
import { createLogger } from "../../gateway/platform/log.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { deadLetterOf } from "../../gateway/platform/bus/consumePolicy.js";
import {
  crossBorderLink,
  eventually,
  matrixRoom,
  message,
  stashcatChannel,
  writeGatewayConfig,
  xmppRoom,
} from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { RecordingAdapter } from "../helpers/RecordingAdapter.js";
import { runFedgate } from "../helpers/processes.js";
import type { Capabilities } from "../../bridges/kit/capabilities.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const TOKEN = "outcomes-token";
/** Stashcat's fake refuses messages carrying this, and every notice. */
const UNDELIVERABLE = "[unzustellbar]";
const REFUSAL = "Stashcat refused the message: the channel is read-only";
/** A conversation shared with a partner gateway, linked, so that only the rule keeps its senders untold. */
const partnerRoom: Endpoint = {
  network: "federation",
  instance: "fr-gw",
  conversation: "lage",
  agency: "dinum-mi",
};
const partnerLink: Link = {
  id: "partage",
  endpoints: [partnerRoom, { ...stashcatChannel, conversation: "channel:2002" }],
};

const validateEventStatus = validatorFor<EventStatus>(
  "schemas/event-status.schema.json",
  "event status",
  "FG_EVENT_INVALID",
);

/** Matrix's fake shows everything but corrections. */
const WITHOUT_EDITS: Capabilities = {
  edits: "none",
  deletions: "native",
  reactions: "set",
  membership: "native",
  files: true,
  directChats: true,
  catchUp: true,
};

/** The dead letter of a delivery of `event` to Stashcat that Stashcat's bridge refused. */
function undeliveredLetter(event: NormalisedEvent): DeadLetter {
  const delivery: Delivery = { specVersion: "1", id: `${event.id}.x`, event, target: stashcatChannel };
  return deadLetterOf(
    "stashcat-ni",
    subjects.outbound("stashcat", "ni"),
    encodeJson(delivery),
    new PermanentError("FG_PEER_REFUSED", REFUSAL),
  );
}

/** Failed before the gateway first started: dead letters that old are nobody's news. */
const beforeStart = message(xmppRoom, `Vor dem Start ${UNDELIVERABLE}`);

describe.skipIf(nats === undefined)("delivery outcomes - against a real nats-server", () => {
  let gateway: GatewayService;
  let bus: JetStreamBus;
  let xmpp: RecordingAdapter;
  let stashcat: RecordingAdapter;
  let matrix: RecordingAdapter;
  const deadLetters: DeadLetter[] = [];
  /** Every delivery the core published, notices included, whoever consumes them. */
  const outbound: { subject: string; delivery: Delivery }[] = [];

  const decode = (m: BusMessage): unknown => JSON.parse(Buffer.from(m.data).toString("utf8"));
  const get = async (path: string, token = TOKEN): Promise<Response> =>
    fetch(`${gateway.adminUrl ?? ""}${path}`, { headers: { authorization: `Bearer ${token}` } });
  /** GET /v1/events/{id}, checked against its schema; undefined while the core has not routed the event. */
  const statusOf = async (id: string): Promise<EventStatus | undefined> => {
    const response = await get(`/v1/events/${id}`);
    if (response.status === 404) return undefined;
    expect(response.status).toBe(200);
    return validateEventStatus(await response.json());
  };
  /** Notices the core published in reply to `eventId`. */
  const noticesAbout = (eventId: string): Delivery[] =>
    outbound
      .filter((o) => o.delivery.event.type === "notice" && o.delivery.event.relations?.replyTo === eventId)
      .map((o) => o.delivery);
  /** The dead letter of the delivery of `eventId`, once it is stored. */
  const letterFor = (eventId: string): Promise<DeadLetter> =>
    eventually(
      () =>
        deadLetters.find((l) => {
          try {
            return (JSON.parse(l.payload) as Delivery).event.id === eventId;
          } catch {
            return false;
          }
        }),
      10_000,
      `the dead letter of ${eventId}`,
    );
  /**
   * Sends an undeliverable message from XMPP and waits for its notice: dead letters are handled in stream order,
   * so every one stored before it has been handled by then.
   */
  const probe = async (): Promise<void> => {
    const event = message(xmppRoom, `Probe ${UNDELIVERABLE}`);
    await xmpp.runtime.publish(event);
    await eventually(() => xmpp.notices().find((n) => n.delivery.event.relations?.replyTo === event.id));
  };

  beforeAll(async () => {
    if (nats === undefined) return;
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await bus.ensureTopology();
    await bus.publish(subjects.deadLetter("stashcat-ni"), encodeJson(undeliveredLetter(beforeStart)));
    gateway = await GatewayService.start(
      await loadConfig(
        await writeGatewayConfig(nats.url, {
          admin: { host: "127.0.0.1", port: 0, token: { value: TOKEN } },
          links: [crossBorderLink, partnerLink],
        }),
        {},
      ),
      log,
    );
    xmpp = await RecordingAdapter.open(bus, "xmpp", "bpol");
    matrix = await RecordingAdapter.open(bus, "matrix", "tchap", { capabilities: WITHOUT_EDITS });
    stashcat = await RecordingAdapter.open(bus, "stashcat", "ni", {
      refuse: (delivery) =>
        delivery.event.type === "notice" || delivery.event.content?.body?.includes(UNDELIVERABLE) === true
          ? new PermanentError("FG_PEER_REFUSED", REFUSAL)
          : undefined,
    });
    await bus.follow("FEDGATE_DEADLETTER", subjects.deadLetterAll, "start", (m) => {
      // One of them is not JSON on purpose.
      if (m.data[0] === 0x7b) deadLetters.push(decode(m) as DeadLetter);
    });
    await bus.follow("FEDGATE_OUTBOUND", subjects.outboundAll, "start", (m) =>
      outbound.push({ subject: m.subject, delivery: decode(m) as Delivery }),
    );
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await Promise.all([xmpp.runtime.close(), stashcat.runtime.close(), matrix.runtime.close()]);
    await bus.close();
    await gateway.stop();
    await nats.stop();
  });

  it("delivery failures - a dead-lettered delivery is told to the sender once, in reply, even when handled twice", async () => {
    const event = message(xmppRoom, `Lagebild ${UNDELIVERABLE}`);
    await xmpp.runtime.publish(event);
    await eventually(() => (matrix.of(event.id).length > 0 ? true : undefined), 10_000, "delivery to Matrix");
    const letter = await letterFor(event.id);
    const notice = await eventually(
      () => xmpp.notices().find((n) => n.delivery.event.relations?.replyTo === event.id),
      10_000,
      "the notice to the sender",
    );
    expect(notice.delivery.target).toEqual({ ...xmppRoom, kind: "room" });
    expect(notice.delivery.event.content?.body).toBe(
      `Your message could not be delivered to:\n- Polizei Niedersachsen: ${REFUSAL} (FG_PEER_REFUSED)`,
    );
    // The same dead letter handled again (a replica crashed before acknowledging it) tells no one twice.
    await bus.publish(subjects.deadLetter("stashcat-ni"), encodeJson(letter));
    await probe();
    expect(xmpp.notices().filter((n) => n.delivery.event.relations?.replyTo === event.id)).toHaveLength(1);
    expect(noticesAbout(event.id)).toHaveLength(1);
  });

  it("delivery failures - a notice that cannot be delivered is told to no one", async () => {
    // Denied towards France, so Stashcat's sender gets a notice, which Stashcat's bridge refuses.
    const event = message(stashcatChannel, "VS-NfD Lage", { marking: "DE-VS-NFD" });
    await stashcat.runtime.publish(event);
    const [denial] = await eventually(() =>
      noticesAbout(event.id).length > 0 ? noticesAbout(event.id) : undefined,
    );
    const refused = denial?.event.id ?? "";
    await letterFor(refused);
    await probe();
    expect(stashcat.refused.filter((d) => d.event.id === refused)).toHaveLength(1);
    expect(noticesAbout(refused)).toHaveLength(0);
  });

  it("delivery failures - no notice for a partner gateway's sender, for membership, for what is no delivery, or from before the core's consumer existed", async () => {
    const fromPartner = message(partnerRoom, `Message du partenaire ${UNDELIVERABLE}`);
    const joined: NormalisedEvent = { ...message(xmppRoom, "unused"), type: "member.joined" };
    delete joined.content;
    for (const event of [fromPartner, joined])
      await bus.publish(subjects.deadLetter("stashcat-ni"), encodeJson(undeliveredLetter(event)));
    // Native input a bridge refused, and a letter that is no JSON at all.
    await xmpp.runtime.deadLetter("lage@conference.bpol.localhost", "<message/>", new Error("unreadable"));
    await bus.publish(subjects.deadLetter("stashcat-ni"), new TextEncoder().encode("not json"));
    await probe();
    expect(noticesAbout(fromPartner.id)).toHaveLength(0);
    expect(noticesAbout(joined.id)).toHaveLength(0);
    expect(noticesAbout(beforeStart.id)).toHaveLength(0);
    expect(outbound.filter((o) => o.subject.startsWith("fedgate.v1.outbound.federation."))).toHaveLength(0);
  });

  it("event status - a delivered and a dead-lettered target, metadata only", async () => {
    const event = message(xmppRoom, `Treffpunkt Nord ${UNDELIVERABLE}`);
    await xmpp.runtime.publish(event);
    await letterFor(event.id);
    const status = await eventually(async () => {
      const body = await statusOf(event.id);
      const states = body?.targets.map((t) => t.delivery?.state) ?? [];
      return states.includes("delivered") && states.includes("failed") ? body : undefined;
    });
    expect(status.eventId).toBe(event.id);
    expect(status.eventType).toBe("message.created");
    expect(status.source).toEqual({ network: "xmpp", instance: "bpol", conversation: xmppRoom.conversation });
    const byNetwork = Object.fromEntries(status.targets.map((t) => [t.target.network, t]));
    expect(byNetwork["matrix"]).toMatchObject({
      target: { network: "matrix", instance: "tchap", conversation: matrixRoom.conversation },
      agency: "dinum-mi",
      decision: "deliver",
      reason: "allowed",
      delivery: { state: "delivered" },
    });
    expect(byNetwork["stashcat"]).toMatchObject({
      agency: "polizei-ni",
      decision: "deliver",
      reason: "allowed",
      delivery: { state: "failed", code: "FG_PEER_REFUSED" },
    });
    expect(Date.parse(byNetwork["stashcat"]?.delivery?.failedAt ?? "")).toBeGreaterThan(0);
    const text = JSON.stringify(status);
    expect(text).not.toContain("Treffpunkt");
    expect(text).not.toContain(REFUSAL);
    // Native ids stay in the message map: the RecordingAdapter's are "<instance>-<n>".
    expect(text).not.toMatch(/tchap-\d/);

    // The same, from the command line.
    const cli = runFedgate(["events", "status", event.id, "--nats", nats?.url ?? ""]);
    expect(await cli.exited).toBe(0);
    const lines = cli.output().split("\n");
    expect(lines[0]).toContain(`message.created ${event.id} from xmpp/bpol/${xmppRoom.conversation}`);
    expect(lines.find((l) => l.includes("stashcat/ni/channel:1001"))).toMatch(
      /DELIVER +allowed +stashcat\/ni\/channel:1001 \(polizei-ni\): failed FG_PEER_REFUSED at /,
    );
    expect(lines.find((l) => l.includes("matrix/tchap/"))).toMatch(/: delivered$/);
    const unknown = runFedgate(["events", "status", randomUUID(), "--nats", nats?.url ?? ""]);
    expect(await unknown.exited).toBe(1);
    expect(unknown.output()).toContain("FG_EVENT_NOT_FOUND");
  });

  it("event status - a denied target, with its reason and marking", async () => {
    const event = message(stashcatChannel, "Nur für den Dienstgebrauch", { marking: "DE-VS-NFD" });
    await stashcat.runtime.publish(event);
    await eventually(() => (xmpp.of(event.id).length > 0 ? true : undefined), 10_000, "delivery to XMPP");
    const status = await eventually(async () => {
      const body = await statusOf(event.id);
      return body?.targets.some((t) => t.delivery?.state === "delivered") ? body : undefined;
    });
    expect(status.marking).toBe("DE-VS-NFD");
    const byNetwork = Object.fromEntries(status.targets.map((t) => [t.target.network, t]));
    expect(byNetwork["matrix"]).toMatchObject({ decision: "deny", reason: "marking-above-route" });
    expect(byNetwork["matrix"]?.delivery).toBeUndefined();
    expect(byNetwork["xmpp"]).toMatchObject({
      agency: "bpol",
      decision: "deliver",
      reason: "allowed",
      delivery: { state: "delivered" },
    });
    expect(Date.parse(byNetwork["xmpp"]?.decidedAt ?? "")).toBeGreaterThan(0);
  });

  it("event status - an edit the target network cannot show is unsupported there, delivered elsewhere", async () => {
    const original = message(xmppRoom, "Treffpunkt Süd");
    await xmpp.runtime.publish(original);
    await eventually(() => (matrix.of(original.id).length > 0 ? true : undefined), 10_000, "the original");
    const edit = message(xmppRoom, "Treffpunkt Süd, Tor 3", {
      type: "message.edited",
      relations: { replaces: original.id },
    });
    await xmpp.runtime.publish(edit);
    const status = await eventually(async () => {
      const body = await statusOf(edit.id);
      const states = body?.targets.map((t) => t.delivery?.state) ?? [];
      return states.includes("unsupported") && states.includes("delivered") ? body : undefined;
    });
    expect(status.eventType).toBe("message.edited");
    const byNetwork = Object.fromEntries(status.targets.map((t) => [t.target.network, t]));
    expect(byNetwork["matrix"]).toMatchObject({ decision: "deliver", delivery: { state: "unsupported" } });
    expect(byNetwork["matrix"]?.delivery?.detail).toContain("corrections");
    expect(byNetwork["stashcat"]).toMatchObject({ decision: "deliver", delivery: { state: "delivered" } });
    expect(matrix.of(edit.id)).toHaveLength(0);
    expect(noticesAbout(edit.id)).toHaveLength(0);
  });

  it("event status - an unknown or impossible id is 404 FG_EVENT_NOT_FOUND; no token, 401", async () => {
    for (const id of [randomUUID(), "x".repeat(300), "..%2Flinks", "a b c d e f g h"]) {
      const response = await get(`/v1/events/${id}`);
      expect(response.status, id).toBe(404);
      expect(response.headers.get("content-type")).toContain("application/problem+json");
      expect(((await response.json()) as { code: string }).code).toBe("FG_EVENT_NOT_FOUND");
    }
    expect((await get(`/v1/events/${randomUUID()}`, "wrong")).status).toBe(401);
  });
});
