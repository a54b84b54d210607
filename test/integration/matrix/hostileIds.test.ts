/**
 * Matrix ids as a hostile room sends them, against a real Synapse: an id far over the spec's 255 bytes in a
 * reply, a reaction, an edit or a redaction is refused as bad input, and never stalls the room.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  connectBus,
  contentOf,
  linkedRoom,
  Official,
  putTransaction,
  startMatrixBridge,
  startMatrixScene,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const logLines: string[] = [];
const log = createLogger("warn", "test", {
  write: (chunk: string) => {
    logLines.push(chunk);
  },
});
const scene = await startMatrixScene();

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("no Matrix scene");
  return value;
}

/** An event id of about 4,000 characters: its KV key would pass NATS's control-line limit. */
const hugeEventId = `$${"a".repeat(4000)}`;

describe.skipIf(scene === undefined)("Matrix bridge - hostile ids", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let claire: Official;
  const bot = scene?.bot ?? "";

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    bridge = await startMatrixBridge(bus, scene, log);
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
  });

  afterAll(async () => {
    try {
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  it("Matrix ids - a reply naming a 4,000-character event id is refused, and the room's next messages are bridged", async () => {
    const room = await linkedRoom(must(scene), bus, claire, "giftig");
    const poison = await claire.send(room, {
      msgtype: "m.text",
      body: "Antwort",
      "m.relates_to": { "m.in_reply_to": { event_id: hugeEventId } },
    });
    const after = await claire.say(room, "Danach");
    await eventually(
      () => inbound.find((e) => e.source.messageId === after),
      20_000,
      "the message after the poison reply",
    );
    expect(inbound.some((e) => e.source.messageId === poison)).toBe(false);
    const line = logLines.find((l) => l.includes(JSON.stringify(poison)));
    expect(line, "the poison reply's log line").toContain("FG_NATIVE_INVALID");
    // The room hears why, in a notice answering the refused message.
    await eventually(
      async () =>
        (await claire.eventsFrom(room, bot)).find(
          (e) =>
            String(contentOf(e)["body"]).startsWith("Not bridged:") &&
            JSON.stringify(contentOf(e)).includes(poison),
        ),
      20_000,
      "the bot's notice answering the poison reply",
    );
  });

  it("Matrix ids - over-long or malformed ids anywhere in an event are refused one by one; the transaction succeeds", async () => {
    const room = await linkedRoom(must(scene), bus, claire, "giftig-2");
    const first = await claire.say(room, "Vorher");
    await eventually(() => inbound.find((e) => e.source.messageId === first), 20_000, "the first message");
    const base = {
      room_id: room,
      sender: claire.userId,
      origin_server_ts: Date.now(),
      type: "m.room.message",
      content: { msgtype: "m.text", body: "x" },
    };
    const id = (what: string): string => `$${what}-${randomUUID()}`;
    const hostile: Record<string, unknown>[] = [
      { ...base, event_id: hugeEventId },
      { ...base, event_id: "no-sigil" },
      { ...base, event_id: id("room"), room_id: `!${"r".repeat(300)}:tchap.localhost` },
      { ...base, event_id: id("sender"), sender: `@${"s".repeat(300)}:tchap.localhost` },
      { ...base, event_id: id("sender-form"), sender: "claire.martin" },
      {
        ...base,
        event_id: id("member"),
        type: "m.room.member",
        state_key: `@${"m".repeat(300)}:tchap.localhost`,
        content: { membership: "join" },
      },
      { ...base, event_id: id("redaction"), type: "m.room.redaction", redacts: hugeEventId, content: {} },
      {
        ...base,
        event_id: id("redaction-v11"),
        type: "m.room.redaction",
        content: { redacts: hugeEventId },
      },
      {
        ...base,
        event_id: id("reaction"),
        type: "m.reaction",
        content: { "m.relates_to": { rel_type: "m.annotation", event_id: hugeEventId, key: "👍" } },
      },
      {
        ...base,
        event_id: id("edit"),
        content: {
          msgtype: "m.text",
          body: "* x",
          "m.new_content": { msgtype: "m.text", body: "x" },
          "m.relates_to": { rel_type: "m.replace", event_id: hugeEventId },
        },
      },
      {
        ...base,
        event_id: id("reply"),
        content: {
          msgtype: "m.text",
          body: "x",
          "m.relates_to": { "m.in_reply_to": { event_id: "not an event id" } },
        },
      },
    ];
    expect(await putTransaction(must(scene), bridge.url, hostile)).toBe(200);
    const after = await claire.say(room, "Nachher");
    await eventually(() => inbound.find((e) => e.source.messageId === after), 20_000, "the message after");
    for (const event of hostile) {
      const eventId = String(event["event_id"]);
      expect(inbound.some((e) => e.source.messageId === eventId)).toBe(false);
      if (eventId.length < 100)
        expect(
          logLines.find((l) => l.includes(JSON.stringify(eventId))),
          `log line for ${eventId}`,
        ).toContain("FG_NATIVE_INVALID");
    }
  });
});
