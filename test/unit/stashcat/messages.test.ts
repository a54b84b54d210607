/**
 * parseMessage on Stashcat's wire message object: each quirk the public clients report (ids and times as
 * strings, `reply_to` as an id or an object, booleans as strings, `metainfo` as JSON text, `reciever`), and
 * objects that are broken, which it refuses naming the field, never the text.
 */
import { describe, expect, it } from "vitest";
import { parseMessage as parseWireMessage } from "../../../bridges/stashcat/messages.js";
import { parseMessage } from "../../../bridges/stashcat/StashcatClient.js";
import { FedgateError, PermanentError } from "../../../schemas/contract/errors.js";

type Json = Record<string, unknown>;

/** A channel message as message/content returns it (`time` a string there). */
function wire(overrides: Json = {}): Json {
  return {
    id: 5001,
    text: "Lage unverändert",
    conversation_id: 0,
    channel_id: 1001,
    thread_id: 0,
    hash: "",
    verification: "",
    time: "1767225600",
    micro_time: "1767225600.123456",
    sender: { id: 4711, first_name: "Anna", last_name: "Meyer", image: "", public_key: "" },
    device_id: "dev1",
    deleted: null,
    kind: "message",
    type: "text",
    reciever: [],
    files: [],
    likes: 0,
    liked: false,
    encrypted: false,
    iv: null,
    reply_to: null,
    metainfo: null,
    ...overrides,
  };
}

function refusal(raw: unknown): PermanentError {
  try {
    parseMessage(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(PermanentError);
    const permanent = error as PermanentError;
    expect(permanent.code).toBe("FG_NATIVE_INVALID");
    return permanent;
  }
  throw new Error("parseMessage accepted it");
}

describe("parseMessage", () => {
  it("normalises a plain channel message", () => {
    expect(parseMessage(wire())).toEqual({
      id: 5001,
      chat: { type: "channel", id: 1001 },
      kind: "message",
      senderId: 4711,
      senderName: "Anna Meyer",
      text: "Lage unverändert",
      encrypted: false,
      time: 1767225600,
      fileIds: [],
      likes: 0,
      liked: false,
      deleted: false,
      markdown: false,
    });
  });

  it("says whether the reader liked it only when the server does", () => {
    expect(parseMessage(wire({ likes: 2, liked: true })).liked).toBe(true);
    expect(parseMessage(wire({ liked: "1" })).liked).toBe(true);
    expect(parseMessage(wire({ liked: undefined }))).not.toHaveProperty("liked");
    expect(parseMessage(wire({ liked: null }))).not.toHaveProperty("liked");
  });

  it("takes ids and times as strings or numbers", () => {
    const message = parseMessage(
      wire({ id: "5002", channel_id: "1001", time: 1767225601, sender: { id: "4712" }, likes: "3" }),
    );
    expect(message).toMatchObject({
      id: 5002,
      chat: { type: "channel", id: 1001 },
      time: 1767225601,
      senderId: 4712,
      senderName: "",
      likes: 3,
    });
  });

  it("tells a conversation message by its conversation_id, with channel_id 0 or absent", () => {
    expect(parseMessage(wire({ channel_id: 0, conversation_id: 2001 })).chat).toEqual({
      type: "conversation",
      id: 2001,
    });
    expect(parseMessage(wire({ channel_id: undefined, conversation_id: "2001" })).chat).toEqual({
      type: "conversation",
      id: 2001,
    });
    expect(parseMessage(wire({ channel_id: null, conversation_id: 2001 })).chat.type).toBe("conversation");
  });

  it("takes reply_to as an id, as digits, or as an object with message_id", () => {
    expect(parseMessage(wire({ reply_to: 4999 })).replyTo).toBe(4999);
    expect(parseMessage(wire({ reply_to: "4999" })).replyTo).toBe(4999);
    expect(
      parseMessage(wire({ reply_to: { message_id: 4999, message_hash: "", message_verification: "" } }))
        .replyTo,
    ).toBe(4999);
    expect(parseMessage(wire({ reply_to: { message_id: "4999" } })).replyTo).toBe(4999);
    expect(parseMessage(wire({ reply_to: 0 })).replyTo).toBeUndefined();
    expect(parseMessage(wire({ reply_to: "" })).replyTo).toBeUndefined();
    expect(parseMessage(wire({ reply_to: { message_id: null } })).replyTo).toBeUndefined();
    expect("replyTo" in parseMessage(wire())).toBe(false);
  });

  it("keeps the hex ciphertext and IV of an encrypted message, with encrypted spelt any way", () => {
    const encrypted = { text: "a1b2c3", iv: "00112233445566778899aabbccddeeff" };
    for (const flag of [true, "true", "True", "1", 1])
      expect(parseMessage(wire({ ...encrypted, encrypted: flag }))).toMatchObject({
        text: "a1b2c3",
        iv: "00112233445566778899aabbccddeeff",
        encrypted: true,
      });
    for (const flag of [false, "false", "0", 0, ""])
      expect(parseMessage(wire({ encrypted: flag })).encrypted).toBe(false);
    expect("iv" in parseMessage(wire({ iv: "" }))).toBe(false);
  });

  it("collects file ids from file objects or plain ids", () => {
    expect(parseMessage(wire({ files: [{ id: "77", name: "lage.pdf" }, { id: 78 }] })).fileIds).toEqual([
      77, 78,
    ]);
    expect(parseMessage(wire({ files: [79, "80"] })).fileIds).toEqual([79, 80]);
    expect(parseMessage(wire({ files: null })).fileIds).toEqual([]);
  });

  it("reads markdown from metainfo as an object or as JSON text", () => {
    expect(parseMessage(wire({ metainfo: { v: 1, style: "md" } })).markdown).toBe(true);
    expect(parseMessage(wire({ metainfo: '{"v":1,"style":"md"}' })).markdown).toBe(true);
    expect(parseMessage(wire({ metainfo: "not json" })).markdown).toBe(false);
    expect(parseMessage(wire({ metainfo: { v: 1 } })).markdown).toBe(false);
  });

  it("takes deleted as null while the message lives and as the quoted time of its deletion, or as a boolean", () => {
    expect(parseMessage(wire({ deleted: null })).deleted).toBe(false);
    expect(parseMessage(wire({ deleted: undefined })).deleted).toBe(false);
    // gostashcat reads it as a quoted unix time; stashcat-api declares a boolean.
    expect(parseMessage(wire({ deleted: "1767225700" })).deleted).toBe(true);
    expect(parseMessage(wire({ deleted: 1767225700 })).deleted).toBe(true);
    expect(parseMessage(wire({ deleted: true })).deleted).toBe(true);
    expect(parseMessage(wire({ deleted: false })).deleted).toBe(false);
    expect(parseMessage(wire({ deleted: "0" })).deleted).toBe(false);
    expect(parseMessage(wire({ deleted: "" })).deleted).toBe(false);
  });

  it("counts a message deleted by a manager as deleted, and a text of null as empty", () => {
    expect(parseMessage(wire({ deleted: "1" })).deleted).toBe(true);
    expect(parseMessage(wire({ is_deleted_by_manager: true })).deleted).toBe(true);
    expect(parseMessage(wire({ text: null, files: [{ id: 77 }] })).text).toBe("");
  });

  it("lets an entry of another kind come without a sender", () => {
    expect(parseMessage(wire({ kind: "system", sender: null }))).toMatchObject({
      kind: "system",
      senderId: 0,
    });
  });

  it("takes the chat asked for when an entry names none", () => {
    const message = parseWireMessage(wire({ channel_id: undefined, conversation_id: undefined }), {
      type: "channel",
      id: 1001,
    });
    expect(message.chat).toEqual({ type: "channel", id: 1001 });
  });

  it("refuses what is not a message object", () => {
    for (const raw of [null, "5001", 5001, [wire()]])
      expect(refusal(raw).detail).toMatchObject({ field: "the message" });
  });

  it.each([
    ["a missing id", { id: undefined }, "id"],
    ["an id that is not one", { id: "50x1" }, "id"],
    ["an id of 0", { id: 0 }, "id"],
    ["a negative id", { id: -5 }, "id"],
    ["no chat at all", { channel_id: 0, conversation_id: 0 }, "channel_id"],
    ["two chats", { channel_id: 1001, conversation_id: 2001 }, "channel_id"],
    ["a channel id that is not one", { channel_id: "Einsatz" }, "channel_id"],
    ["no sender", { sender: undefined }, "sender"],
    ["a sender that is not an object", { sender: 4711 }, "sender"],
    ["a sender without an id", { sender: { first_name: "Anna" } }, "sender.id"],
    ["a text that is not a string", { text: 42 }, "text"],
    ["an IV that is not a string", { iv: 7 }, "iv"],
    ["encrypted that is not a boolean", { encrypted: "yes" }, "encrypted"],
    ["a missing time", { time: undefined }, "time"],
    ["a time that is not one", { time: "gestern" }, "time"],
    ["a time after the year 9999", { time: "9999999999999999" }, "time"],
    ["a time after the year 9999, as a number", { time: 253402300800 }, "time"],
    ["a time past what a date can hold", { time: 9000000000000 }, "time"],
    ["a kind that is not a string", { kind: 1 }, "kind"],
    ["files that are not a list", { files: "77" }, "files"],
    ["a file without an id", { files: [{ name: "lage.pdf" }] }, "files"],
    ["a reply_to that is not an id", { reply_to: { message_id: "x" } }, "reply_to"],
    ["likes that are not a count", { likes: "viele" }, "likes"],
    ["liked that is not a boolean", { liked: "vielleicht" }, "liked"],
    ["a deletion that is neither a time nor a boolean", { deleted: "gestern" }, "deleted"],
    ["a deletion that is an object", { deleted: { time: 1 } }, "deleted"],
    ["a deletion after the year 9999", { deleted: "253402300800" }, "deleted"],
  ])("refuses %s, naming the field", (_what, overrides, field) => {
    const error = refusal(wire({ text: "geheimer Lagebericht", ...overrides }));
    expect(error.detail["field"]).toBe(field);
    expect(error.message).toContain(field);
    expect(error.message).not.toContain("geheimer Lagebericht");
    expect(JSON.stringify(error.detail)).not.toContain("geheimer Lagebericht");
  });

  it("names the message id when it has one", () => {
    const error = refusal(wire({ time: "gestern" }));
    expect(error).toBeInstanceOf(FedgateError);
    expect(error.detail["messageId"]).toBe(5001);
  });
});
