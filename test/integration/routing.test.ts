import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord, DeadLetter } from "../../schemas/types.js";
import type { BusMessage } from "../../gateway/platform/bus/Bus.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { loadConfig } from "../../gateway/platform/config/loadConfig.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { GatewayService } from "../../gateway/core/GatewayService.js";
import { createLogger } from "../../gateway/platform/log.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import {
  auditRecordsIn,
  eventually,
  matrixRoom,
  message,
  stashcatChannel,
  writeGatewayConfig,
  xmppRoom,
} from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { RecordingAdapter } from "../helpers/RecordingAdapter.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");

describe.skipIf(nats === undefined)("routing core - against a real nats-server", () => {
  let gateway: GatewayService;
  let bus: JetStreamBus;
  let xmpp: RecordingAdapter;
  let stashcat: RecordingAdapter;
  let matrix: RecordingAdapter;
  const audit: AuditRecord[] = [];
  const deadLetters: DeadLetter[] = [];

  beforeAll(async () => {
    if (nats === undefined) return;
    gateway = await GatewayService.start(await loadConfig(await writeGatewayConfig(nats.url), {}), log);
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    xmpp = await RecordingAdapter.open(bus, "xmpp", "bpol");
    stashcat = await RecordingAdapter.open(bus, "stashcat", "ni");
    matrix = await RecordingAdapter.open(bus, "matrix", "tchap");
    const decode = (m: BusMessage): unknown => JSON.parse(Buffer.from(m.data).toString("utf8"));
    await bus.follow("FEDGATE_AUDIT", subjects.auditAll, "start", (m) =>
      audit.push(...auditRecordsIn(m.data)),
    );
    await bus.follow("FEDGATE_DEADLETTER", subjects.deadLetterAll, "start", (m) =>
      deadLetters.push(decode(m) as DeadLetter),
    );
  });

  afterAll(async () => {
    if (nats === undefined) return;
    await Promise.all([xmpp.runtime.close(), stashcat.runtime.close(), matrix.runtime.close()]);
    await bus.close();
    await gateway.stop();
    await nats.stop();
  });

  it("routing - an allowed route delivers to every other linked conversation", async () => {
    const event = message(xmppRoom, "Lagebesprechung 14 Uhr");
    await xmpp.runtime.publish(event);
    const [toStashcat] = await eventually(() =>
      stashcat.of(event.id).length > 0 ? stashcat.of(event.id) : undefined,
    );
    const [toMatrix] = await eventually(() =>
      matrix.of(event.id).length > 0 ? matrix.of(event.id) : undefined,
    );
    expect(toStashcat?.delivery.target).toEqual({ ...stashcatChannel, kind: "room" });
    expect(toMatrix?.delivery.target).toEqual({ ...matrixRoom, kind: "room" });
    expect(toMatrix?.delivery.event.content?.body).toBe("Lagebesprechung 14 Uhr");
    expect(toMatrix?.delivery.senderAgency).toEqual({ id: "bpol", name: "Bundespolizei", country: "DE" });
    expect(xmpp.of(event.id)).toHaveLength(0);
    const records = await eventually(() => {
      const found = audit.filter((a) => a.eventId === event.id);
      return found.length === 2 ? found : undefined;
    });
    expect(records.every((r) => r.decision === "deliver" && r.reason === "allowed")).toBe(true);
  });

  it("policy - a denied route delivers nothing there, sends the sender a notice and audits the denial", async () => {
    const event = message(stashcatChannel, "Nur für den Dienstgebrauch: Fahndung", { marking: "DE-VS-NFD" });
    await stashcat.runtime.publish(event);
    await eventually(() => (xmpp.of(event.id).length > 0 ? true : undefined), 10_000, "delivery to XMPP");
    const notice = await eventually(() =>
      stashcat.notices().find((n) => n.delivery.event.relations?.replyTo === event.id),
    );
    expect(notice.delivery.target).toEqual({ ...stashcatChannel, kind: "room" });
    expect(notice.delivery.event.content?.body).toContain("Ministère de l'Intérieur");
    expect(notice.delivery.event.content?.body).toContain("marking-above-route");
    const denial = await eventually(() => audit.find((a) => a.eventId === event.id && a.decision === "deny"));
    expect(denial.reason).toBe("marking-above-route");
    expect(denial.target).toEqual({ ...matrixRoom, kind: "room" });
    expect(denial.contentSha256).toMatch(/^[0-9a-f]{64}$/);
    // Audit holds metadata only.
    expect(JSON.stringify(denial)).not.toContain("Fahndung");
    expect(matrix.of(event.id)).toHaveLength(0);
    // The XMPP side sees it as marked, which both ends are accredited for.
    expect(xmpp.of(event.id)[0]?.delivery.marking).toEqual({
      id: "DE-VS-NFD",
      label: "VS-NUR FÜR DEN DIENSTGEBRAUCH",
    });
  });

  it("policy - a marking above anything the policy declares is refused on every route", async () => {
    const event = message(xmppRoom, "Geheim", { marking: "DE-GEHEIM" });
    await xmpp.runtime.publish(event);
    const denials = await eventually(() => {
      const found = audit.filter((a) => a.eventId === event.id);
      return found.length === 2 ? found : undefined;
    });
    expect(denials.map((d) => d.reason)).toEqual(["marking-unknown", "marking-unknown"]);
    await eventually(() => xmpp.notices().find((n) => n.delivery.event.relations?.replyTo === event.id));
    expect(stashcat.of(event.id)).toHaveLength(0);
    expect(matrix.of(event.id)).toHaveLength(0);
  });

  it("policy - a marked message is shown to the French side with the declared French equivalent", async () => {
    const event = message(xmppRoom, "VS-NfD an Paris", { marking: "DE-VS-NFD" });
    await xmpp.runtime.publish(event);
    const [received] = await eventually(() =>
      matrix.of(event.id).length > 0 ? matrix.of(event.id) : undefined,
    );
    expect(received?.delivery.marking).toEqual({
      id: "FR-DR",
      label: "DIFFUSION RESTREINTE",
      original: "DE-VS-NFD",
    });
  });

  it("message map - an edit, a reply and a deletion land on the right native message on each side", async () => {
    const original = message(xmppRoom, "Treffpunkt Hauptbahnhof");
    await xmpp.runtime.publish(original);
    const [first] = await eventually(() =>
      stashcat.of(original.id).length > 0 ? stashcat.of(original.id) : undefined,
    );
    const stashcatNativeId = await eventually(() =>
      stashcat.runtime.messages.nativeId(original.id, stashcatChannel),
    );
    expect(first).toBeDefined();

    const edit = message(xmppRoom, "Treffpunkt Südausgang", {
      type: "message.edited",
      relations: { replaces: original.id },
    });
    await xmpp.runtime.publish(edit);
    const [edited] = await eventually(() =>
      stashcat.of(edit.id).length > 0 ? stashcat.of(edit.id) : undefined,
    );
    expect(edited?.relations.replaces).toBe(stashcatNativeId);

    // A Stashcat user replies to the message as they see it: the adapter finds its event id by native id.
    const repliedTo = await stashcat.runtime.messages.eventId(stashcatChannel, stashcatNativeId);
    expect(repliedTo).toBe(original.id);
    const reply = message(stashcatChannel, "Verstanden", { relations: { replyTo: original.id } });
    await stashcat.runtime.publish(reply);
    const [replyAtXmpp] = await eventually(() =>
      xmpp.of(reply.id).length > 0 ? xmpp.of(reply.id) : undefined,
    );
    expect(replyAtXmpp?.relations.replyTo).toBe(original.source.messageId);
    const [replyAtMatrix] = await eventually(() =>
      matrix.of(reply.id).length > 0 ? matrix.of(reply.id) : undefined,
    );
    expect(replyAtMatrix?.relations.replyTo).toBe(
      await matrix.runtime.messages.nativeId(original.id, matrixRoom),
    );

    const deletion = message(xmppRoom, "", { type: "message.deleted", relations: { redacts: original.id } });
    delete deletion.content;
    await xmpp.runtime.publish(deletion);
    const [deleted] = await eventually(() =>
      matrix.of(deletion.id).length > 0 ? matrix.of(deletion.id) : undefined,
    );
    expect(deleted?.relations.redacts).toBe(await matrix.runtime.messages.nativeId(original.id, matrixRoom));
    expect(deleted?.relations.redacts).toMatch(/^tchap-\d+$/);
  });

  it("idempotency - an inbound event processed twice produces one delivery per target", async () => {
    const event = message(xmppRoom, "Einmal bitte");
    const data = encodeJson(event);
    // Same event under two message ids: the inbound stream keeps both, so the core really sees it twice.
    await bus.publish(subjects.inbound(event.source), data, { msgId: `${event.id}-a` });
    await bus.publish(subjects.inbound(event.source), data, { msgId: `${event.id}-b` });
    const marker = message(xmppRoom, "after");
    await xmpp.runtime.publish(marker);
    await eventually(() => (matrix.of(marker.id).length > 0 ? true : undefined));
    expect(matrix.of(event.id)).toHaveLength(1);
    expect(stashcat.of(event.id)).toHaveLength(1);
    // Audit batches cannot be de-duplicated by message id: the second processing is recorded too, and
    // (eventId, target) identifies the record. Both say the same.
    const records = audit.filter((a) => a.eventId === event.id);
    expect(new Set(records.map((r) => r.target?.conversation)).size).toBe(2);
    expect(records.every((r) => r.decision === "deliver")).toBe(true);
  });

  describe("bad input", () => {
    async function stillRouting(): Promise<void> {
      const probe = message(xmppRoom, "still there?");
      await xmpp.runtime.publish(probe);
      await eventually(
        () => (matrix.of(probe.id).length > 0 ? true : undefined),
        10_000,
        "routing after bad input",
      );
    }

    it("bad input - malformed JSON is dead-lettered with FG_EVENT_MALFORMED and the core keeps serving", async () => {
      const subject = subjects.inbound(xmppRoom);
      await bus.publish(subject, new TextEncoder().encode("{not json"));
      const letter = await eventually(() => deadLetters.find((d) => d.payload === "{not json"));
      expect(letter.reason.code).toBe("FG_EVENT_MALFORMED");
      expect(letter.origin).toBe("core");
      expect(letter.subject).toBe(subject);
      await stillRouting();
    });

    it("bad input - an event that breaks the schema is dead-lettered naming the field", async () => {
      const event = message(xmppRoom, "x");
      const broken = { ...event, sender: { userId: 42 } };
      await bus.publish(subjects.inbound(event.source), encodeJson(broken));
      const letter = await eventually(() => deadLetters.find((d) => d.payload.includes(event.id)));
      expect(letter.reason.code).toBe("FG_EVENT_INVALID");
      expect(letter.reason.message).toContain("/sender/userId");
      await stillRouting();
    });

    it("bad input - an event on another conversation's subject is dead-lettered", async () => {
      const event = message(xmppRoom, "wrong place");
      await bus.publish(subjects.inbound(stashcatChannel), encodeJson(event));
      const letter = await eventually(() => deadLetters.find((d) => d.payload.includes(event.id)));
      expect(letter.reason.code).toBe("FG_EVENT_INVALID");
      expect(letter.reason.message).toContain("/source");
      await stillRouting();
    });

    it("bad input - an unknown sender agency is denied with agency-unknown and explained to the sender", async () => {
      const event = message(xmppRoom, "Wer bin ich?", { sender: { userId: "u1", agency: "no-such-agency" } });
      await xmpp.runtime.publish(event);
      const denials = await eventually(() => {
        const found = audit.filter((a) => a.eventId === event.id);
        return found.length === 2 ? found : undefined;
      });
      expect(denials.every((d) => d.reason === "agency-unknown")).toBe(true);
      await eventually(() => xmpp.notices().find((n) => n.delivery.event.relations?.replyTo === event.id));
      await stillRouting();
    });

    it("bad input - an event from a conversation with no link is audited as no-link, never delivered", async () => {
      const event = message({ ...xmppRoom, conversation: "nowhere@conference.bpol.localhost" }, "hello?");
      await xmpp.runtime.publish(event);
      const record = await eventually(() => audit.find((a) => a.eventId === event.id));
      expect(record.reason).toBe("no-link");
      await stillRouting();
      expect(matrix.of(event.id)).toHaveLength(0);
    });
  });
});
