import { describe, expect, it } from "vitest";
import {
  isMarkingId,
  markingOfState,
  parseMatrixEvent,
  type MatrixEvent,
} from "../../../bridges/matrix/matrixEvents.js";
import { PermanentError } from "../../../schemas/contract/errors.js";

const valid = {
  event_id: "$abc:tchap.localhost",
  room_id: "!lage:tchap.localhost",
  sender: "@weber:tchap.localhost",
  type: "m.room.message",
  origin_server_ts: 1_700_000_000_000,
  content: { msgtype: "m.text", body: "Lage ruhig" },
};

function refusal(raw: unknown): PermanentError {
  try {
    parseMatrixEvent(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).code).toBe("FG_NATIVE_INVALID");
    return error as PermanentError;
  }
  throw new Error("the event was accepted");
}

describe("Matrix events", () => {
  it("Matrix events - a valid event keeps the fields the bridge reads and drops the rest", () => {
    const event: MatrixEvent = parseMatrixEvent({
      ...valid,
      type: "m.room.member",
      state_key: "@weber:tchap.localhost",
      content: { membership: "join" },
      unsigned: { prev_content: { membership: "invite" }, age: 5 },
      hashes: { sha256: "x" },
    });
    expect(event).toEqual({
      ...valid,
      type: "m.room.member",
      state_key: "@weber:tchap.localhost",
      content: { membership: "join" },
      unsigned: { prev_content: { membership: "invite" }, age: 5 },
    });
    expect(parseMatrixEvent({ ...valid, type: "m.room.redaction", redacts: "$x:hs" }).redacts).toBe("$x:hs");
  });

  it("Matrix events - what is not an object is refused", () => {
    for (const raw of [null, undefined, "event", 42, [valid]]) {
      expect(refusal(raw).detail).toEqual({ reason: "not-an-object" });
    }
  });

  it("Matrix events - a missing content is refused, naming the event", () => {
    const { content: _content, ...withoutContent } = valid;
    const error = refusal(withoutContent);
    expect(error.message).toContain("$abc:tchap.localhost");
    expect(error.detail).toEqual({
      reason: "missing-field",
      field: "content",
      eventId: "$abc:tchap.localhost",
      type: "m.room.message",
    });
    expect(refusal({ ...valid, content: "Lage ruhig" }).detail).toMatchObject({
      reason: "wrong-type",
      field: "content",
    });
    expect(refusal({ ...valid, content: ["x"] }).detail).toMatchObject({ field: "content" });
  });

  it("Matrix events - each required field must be there with its type", () => {
    for (const field of ["event_id", "room_id", "sender", "type", "origin_server_ts"] as const) {
      const { [field]: _dropped, ...rest } = valid;
      expect(refusal(rest).detail).toMatchObject({ reason: "missing-field", field });
      expect(refusal({ ...valid, [field]: field === "origin_server_ts" ? "now" : 7 }).detail).toMatchObject({
        reason: "wrong-type",
        field,
      });
    }
    expect(refusal({ ...valid, event_id: "" }).detail).toMatchObject({ field: "event_id" });
    expect(refusal({ ...valid, origin_server_ts: -1 }).detail).toMatchObject({ field: "origin_server_ts" });
    expect(refusal({ ...valid, origin_server_ts: 1.5 }).detail).toMatchObject({ field: "origin_server_ts" });
    // A Date holds it, but it is past year 9999, which no RFC 3339 date-time (the event's timestamp) names.
    expect(refusal({ ...valid, origin_server_ts: 1047326981503529 }).detail).toMatchObject({
      field: "origin_server_ts",
    });
    expect(refusal({ ...valid, origin_server_ts: 9e15 }).detail).toMatchObject({ field: "origin_server_ts" });
    expect(refusal({ ...valid, state_key: 1 }).detail).toMatchObject({ field: "state_key" });
    expect(refusal({ ...valid, redacts: {} }).detail).toMatchObject({ field: "redacts" });
    expect(refusal({ ...valid, unsigned: "x" }).detail).toMatchObject({ field: "unsigned" });
  });

  it("Matrix events - every id the bridge reads is checked: its sigil, its form, at most 255 bytes", () => {
    const huge = `$${"a".repeat(4000)}`;
    const cases: [Record<string, unknown>, string][] = [
      [{ event_id: huge }, "event_id"],
      [{ event_id: "abc:tchap.localhost" }, "event_id"],
      [{ event_id: "$with space" }, "event_id"],
      [{ room_id: `!${"r".repeat(300)}:tchap.localhost` }, "room_id"],
      [{ room_id: "#alias:tchap.localhost" }, "room_id"],
      [{ room_id: "!lage:bad server" }, "room_id"],
      [{ sender: "weber" }, "sender"],
      [{ sender: "@:tchap.localhost" }, "sender"],
      [{ sender: `@${"w".repeat(300)}:tchap.localhost` }, "sender"],
      [{ sender: "@weber:tchap localhost" }, "sender"],
      [{ sender: "@wéber:tchap.localhost" }, "sender"],
      [{ type: "m.room.member", state_key: "weber", content: { membership: "join" } }, "state_key"],
      [{ type: "m.room.redaction", redacts: huge }, "redacts"],
      [{ type: "m.room.redaction", content: { redacts: huge } }, "content.redacts"],
      [{ type: "m.room.redaction", content: { redacts: 5 } }, "content.redacts"],
      [
        { content: { body: "x", "m.relates_to": { "m.in_reply_to": { event_id: huge } } } },
        "m.in_reply_to.event_id",
      ],
      [
        { content: { body: "x", "m.relates_to": { rel_type: "m.replace", event_id: huge } } },
        "m.relates_to.event_id",
      ],
      [
        {
          type: "m.reaction",
          content: { "m.relates_to": { rel_type: "m.annotation", event_id: 7, key: "👍" } },
        },
        "m.relates_to.event_id",
      ],
    ];
    for (const [change, field] of cases) {
      const error = refusal({ ...valid, ...change });
      expect(error.detail, JSON.stringify(change).slice(0, 120)).toMatchObject({ field });
      // Neither the message nor the log line carries a hostile id whole.
      expect(`${error.message} ${JSON.stringify(error.detail)}`.length).toBeLessThan(1000);
    }
    // Ids of every room version pass: v1 event ids with a server, v3 base64, v4 url-safe base64, v12 rooms.
    for (const change of [
      { event_id: "$143273582443PhrSn:example.org" },
      { event_id: "$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk" },
      { event_id: "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg" },
      { room_id: "!cURbafjkfsMDVwdRDQ:matrix.org" },
      { room_id: "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM" },
      { sender: "@Alice_=/+-.1:[2001:db8::1]:8448" },
      { type: "m.room.member", state_key: "@bob:127.0.0.1:8008", content: { membership: "join" } },
      { type: "m.room.redaction", content: { redacts: "$x:hs" } },
    ])
      expect(() => parseMatrixEvent({ ...valid, ...change })).not.toThrow();
  });

  it("Matrix events - a refusal never carries the message text", () => {
    const error = refusal({ ...valid, origin_server_ts: "soon" });
    expect(`${error.message} ${JSON.stringify(error.detail)}`).not.toContain("Lage ruhig");
  });

  it("Matrix events - markings: ids as the schema allows, and the room's from its state", () => {
    expect(isMarkingId("DE-VS-NFD")).toBe(true);
    expect(isMarkingId("de-vs-nfd")).toBe(false);
    expect(isMarkingId("-X")).toBe(false);
    expect(isMarkingId(`A${"B".repeat(64)}`)).toBe(false);
    expect(isMarkingId(7)).toBe(false);
    expect(markingOfState({ marking: "DE-VS-NFD" })).toBe("DE-VS-NFD");
    expect(markingOfState({ marking: "VS NfD" })).toBe(undefined);
    expect(markingOfState({})).toBe(undefined);
  });
});
