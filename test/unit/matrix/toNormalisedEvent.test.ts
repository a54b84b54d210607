import { describe, expect, it } from "vitest";
import { parseMatrixEvent, type MatrixEvent } from "../../../bridges/matrix/matrixEvents.js";
import {
  toNormalisedEvent,
  withoutReplyFallback,
  type InboundContext,
  type MatrixMedia,
} from "../../../bridges/matrix/toNormalisedEvent.js";
import { EARLIER_EDIT_MARK } from "../../../schemas/contract/earlierEdits.js";
import { validateEvent } from "../../../schemas/contract/schemas.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import type { Attachment, NormalisedEvent } from "../../../schemas/types.js";

const ts = 1_700_000_000_000;
const eventId = "0b6f1c2e-4d5a-4e8f-9a7b-3c2d1e0f9a8b";
/** Matrix events fedgate knows, by their gateway event ids. */
const known: Record<string, string> = {
  "$orig:tchap.localhost": "evt-original-0001",
  "$other:tchap.localhost": "evt-original-0002",
};

function matrixEvent(type: string, content: Record<string, unknown>, extra: object = {}): MatrixEvent {
  return parseMatrixEvent({
    event_id: "$new:tchap.localhost",
    room_id: "!lage:tchap.localhost",
    sender: "@weber:tchap.localhost",
    type,
    origin_server_ts: ts,
    content,
    ...extra,
  });
}

function context(overrides: Partial<InboundContext> = {}): InboundContext & { described: MatrixMedia[] } {
  const described: MatrixMedia[] = [];
  return {
    instance: "tchap",
    conversation: "!lage:tchap.localhost",
    sender: { userId: "@weber:tchap.localhost", displayName: "POK Weber" },
    eventId,
    maxBodyBytes: 1024,
    eventIdOf: (id) => Promise.resolve(known[id]),
    describeMedia: (media): Promise<Attachment> => {
      described.push(media);
      return Promise.resolve({
        name: media.name,
        mediaType: media.mediaType ?? "application/octet-stream",
        size: media.size ?? 0,
        sha256: "a".repeat(64),
        url: "https://bridge.example/media/1",
      });
    },
    ...overrides,
    described,
  };
}

/** The event, which must be valid by the contract's schema. */
async function normalised(event: MatrixEvent, ctx = context()): Promise<NormalisedEvent> {
  const result = await toNormalisedEvent(event, ctx);
  expect(result).toBeDefined();
  return validateEvent(result);
}

async function refusal(event: MatrixEvent, ctx = context()): Promise<PermanentError> {
  try {
    await toNormalisedEvent(event, ctx);
  } catch (error) {
    expect(error).toBeInstanceOf(PermanentError);
    const refused = error as PermanentError;
    expect(refused.code).toBe("FG_NATIVE_INVALID");
    expect(refused.detail).toMatchObject({ eventId: event.event_id, type: event.type });
    return refused;
  }
  throw new Error("the event was accepted");
}

const text = (body: string, more: Record<string, unknown> = {}) =>
  matrixEvent("m.room.message", { msgtype: "m.text", body, ...more });

describe("Matrix to normalised event", () => {
  it("Matrix inbound - a text with HTML is message.created, with source, sender and time", async () => {
    const event = await normalised(
      text("Lage **ruhig**", {
        format: "org.matrix.custom.html",
        formatted_body: 'Lage <strong>ruhig</strong><img src="x" onerror="alert(1)">',
      }),
    );
    expect(event).toEqual({
      specVersion: "1",
      id: eventId,
      type: "message.created",
      source: {
        network: "matrix",
        instance: "tchap",
        conversation: "!lage:tchap.localhost",
        messageId: "$new:tchap.localhost",
      },
      sender: { userId: "@weber:tchap.localhost", displayName: "POK Weber" },
      content: { body: "Lage **ruhig**", html: "Lage <strong>ruhig</strong>" },
      timestamp: new Date(ts).toISOString(),
    });
  });

  it("Matrix inbound - a notice is a message; an emote is written /me; another format is ignored", async () => {
    const notice = await normalised(
      matrixEvent("m.room.message", { msgtype: "m.notice", body: "Bot", format: "x", formatted_body: "<b>" }),
    );
    expect(notice.type).toBe("message.created");
    expect(notice.content).toEqual({ body: "Bot" });
    const emote = await normalised(
      matrixEvent("m.room.message", {
        msgtype: "m.emote",
        body: "winkt",
        format: "org.matrix.custom.html",
        formatted_body: "<em>winkt</em>",
      }),
    );
    expect(emote.content).toEqual({ body: "/me winkt", html: "/me <em>winkt</em>" });
  });

  it("Matrix inbound - a reply names the event replied to, without the quote older clients add", async () => {
    const event = await normalised(
      text("> <@lang:tchap.localhost> Lage?\n> Zweite Zeile\n\nRuhig", {
        format: "org.matrix.custom.html",
        formatted_body:
          '<mx-reply><blockquote><a href="https://matrix.to/#/!lage/$orig">In reply to</a> Lage?</blockquote></mx-reply>Ruhig',
        "m.relates_to": { "m.in_reply_to": { event_id: "$orig:tchap.localhost" } },
      }),
    );
    expect(event.content).toEqual({ body: "Ruhig", html: "Ruhig" });
    expect(event.relations).toEqual({ replyTo: "evt-original-0001" });
    // A reply to a message fedgate never saw is still a message, without the relation.
    const unknown = await normalised(
      text("Ruhig", { "m.relates_to": { "m.in_reply_to": { event_id: "$unseen:tchap.localhost" } } }),
    );
    expect(unknown.relations).toBeUndefined();
    expect(unknown.content).toEqual({ body: "Ruhig" });
  });

  it("Matrix inbound - the reply quote is cut only when it is one", () => {
    expect(withoutReplyFallback("> <@a:hs> q\n\nAntwort")).toBe("Antwort");
    expect(withoutReplyFallback("> * <@a:hs> winkt\n\nAntwort")).toBe("Antwort");
    expect(withoutReplyFallback("> ein Zitat\n\nmeins")).toBe("> ein Zitat\n\nmeins");
    expect(withoutReplyFallback("> <@a:hs> nur Zitat")).toBe("> <@a:hs> nur Zitat");
    expect(withoutReplyFallback("> <@a:hs> q\nAntwort\n\nmehr")).toBe("Antwort\n\nmehr");
  });

  it("Matrix inbound - a thread's fallback reply is no reply", async () => {
    const event = await normalised(
      text("im Faden", {
        "m.relates_to": {
          rel_type: "m.thread",
          event_id: "$orig:tchap.localhost",
          is_falling_back: true,
          "m.in_reply_to": { event_id: "$other:tchap.localhost" },
        },
      }),
    );
    expect(event.relations).toBeUndefined();
  });

  it("Matrix inbound - an edit carries the new content only and names the edited event", async () => {
    const edit = text("* neu", {
      format: "org.matrix.custom.html",
      formatted_body: "* <b>neu</b>",
      "m.new_content": {
        msgtype: "m.text",
        body: "neu",
        format: "org.matrix.custom.html",
        formatted_body: "<b>neu</b>",
      },
      "m.relates_to": { rel_type: "m.replace", event_id: "$orig:tchap.localhost" },
    });
    const event = await normalised(edit);
    expect(event.type).toBe("message.edited");
    expect(event.content).toEqual({ body: "neu", html: "<b>neu</b>" });
    expect(event.relations).toEqual({ replaces: "evt-original-0001" });
    expect(event.source.messageId).toBe("$new:tchap.localhost");
  });

  it("Matrix inbound - an edit of an unknown event is a new message marked as an edit; one without new content is refused", async () => {
    // Past the message horizon, or never bridged: nothing to edit, so what it says goes as a plain message.
    const unknown = await normalised(
      text("* neu", {
        "m.new_content": { msgtype: "m.text", body: "neu" },
        "m.relates_to": { rel_type: "m.replace", event_id: "$unseen:tchap.localhost" },
      }),
    );
    expect(unknown.type).toBe("message.created");
    expect(unknown.content).toEqual({ body: `${EARLIER_EDIT_MARK} neu` });
    expect(unknown.relations).toBeUndefined();
    const broken = text("* neu", {
      "m.relates_to": { rel_type: "m.replace", event_id: "$orig:tchap.localhost" },
    });
    expect((await refusal(broken)).detail).toMatchObject({ reason: "edit-content-missing" });
    const emote = await normalised(
      text("* winkt", {
        "m.new_content": { msgtype: "m.emote", body: "winkt" },
        "m.relates_to": { rel_type: "m.replace", event_id: "$orig:tchap.localhost" },
      }),
    );
    expect(emote.content).toEqual({ body: "/me winkt" });
  });

  it("Matrix inbound - a file without caption is an attachment only, described by the caller", async () => {
    const ctx = context();
    const event = await normalised(
      matrixEvent("m.room.message", {
        msgtype: "m.image",
        body: "lage.png",
        url: "mxc://tchap.localhost/AbC123",
        info: { mimetype: "image/png", size: 2048, w: 10, h: 10 },
      }),
      ctx,
    );
    expect(ctx.described).toEqual([
      { mxc: "mxc://tchap.localhost/AbC123", name: "lage.png", mediaType: "image/png", size: 2048 },
    ]);
    expect(event.content).toEqual({
      attachments: [
        {
          name: "lage.png",
          mediaType: "image/png",
          size: 2048,
          sha256: "a".repeat(64),
          url: "https://bridge.example/media/1",
        },
      ],
    });
  });

  it("Matrix inbound - a file with a caption (filename other than body) carries the caption as text", async () => {
    const ctx = context();
    const event = await normalised(
      matrixEvent("m.room.message", {
        msgtype: "m.file",
        body: "Der Bericht",
        format: "org.matrix.custom.html",
        formatted_body: "Der <b>Bericht</b>",
        filename: "bericht.pdf",
        url: "mxc://tchap.localhost/XyZ",
        info: { size: -3, mimetype: 7 },
      }),
      ctx,
    );
    expect(ctx.described).toEqual([{ mxc: "mxc://tchap.localhost/XyZ", name: "bericht.pdf" }]);
    expect(event.content?.body).toBe("Der Bericht");
    expect(event.content?.html).toBe("Der <b>Bericht</b>");
    expect(event.content?.attachments).toHaveLength(1);
  });

  it("Matrix inbound - a file's name is cleaned as every network's: no bidi overrides, controls or path separators", async () => {
    const names: [string, string][] = [
      ["rechnung\u202Efdp.exe", "rechnungfdp.exe"],
      ["../../etc/passwd", ".._.._etc_passwd"],
      ["bericht\u0000\u0007.pdf", "bericht.pdf"],
      ["\u202E", "file"],
      [`${"x".repeat(300)}.pdf`, `${"x".repeat(251)}.pdf`],
    ];
    for (const [filename, cleaned] of names) {
      const ctx = context();
      await normalised(
        matrixEvent("m.room.message", {
          msgtype: "m.file",
          body: filename,
          filename,
          url: "mxc://tchap.localhost/XyZ",
        }),
        ctx,
      );
      expect(
        ctx.described.map((m) => m.name),
        JSON.stringify(filename),
      ).toEqual([cleaned]);
    }
  });

  it("Matrix inbound - an encrypted file is described with its key; a malformed one is refused", async () => {
    const key = Buffer.alloc(32, 7);
    const file = {
      url: "mxc://tchap.localhost/enc",
      key: {
        kty: "oct",
        key_ops: ["encrypt", "decrypt"],
        alg: "A256CTR",
        k: key.toString("base64url"),
        ext: true,
      },
      iv: Buffer.alloc(16, 1).toString("base64").replace(/=+$/, ""),
      hashes: { sha256: Buffer.alloc(32, 2).toString("base64").replace(/=+$/, "") },
      v: "v2",
    };
    const ctx = context();
    await normalised(
      matrixEvent("m.room.message", {
        msgtype: "m.file",
        body: "geheim.pdf",
        file,
        info: { mimetype: "application/pdf", size: 10 },
      }),
      ctx,
    );
    expect(ctx.described).toHaveLength(1);
    expect(ctx.described[0]).toMatchObject({ mxc: file.url, name: "geheim.pdf", size: 10 });
    expect(ctx.described[0]?.keys?.key.equals(key)).toBe(true);

    const malformed = toNormalisedEvent(
      matrixEvent("m.room.message", {
        msgtype: "m.file",
        body: "geheim.pdf",
        file: { ...file, key: {}, iv: "x" },
      }),
      context(),
    );
    await expect(malformed).rejects.toMatchObject({ code: "FG_ATTACHMENT_INVALID" });
    expect(
      (
        await refusal(
          matrixEvent("m.room.message", { msgtype: "m.video", body: "v.mp4", url: "https://x/v" }),
        )
      ).detail,
    ).toMatchObject({ reason: "media-url-invalid" });
  });

  it("Matrix inbound - an unknown msgtype is refused", async () => {
    const error = await refusal(
      matrixEvent("m.room.message", { msgtype: "m.location", body: "hier", geo_uri: "geo:1,2" }),
    );
    expect(error.detail).toMatchObject({ reason: "msgtype-unknown" });
    expect((await refusal(matrixEvent("m.room.message", { body: "x" }))).detail).toMatchObject({
      reason: "msgtype-missing",
    });
  });

  it("Matrix inbound - a missing or wrong-typed body is refused", async () => {
    expect((await refusal(matrixEvent("m.room.message", { msgtype: "m.text" }))).detail).toMatchObject({
      reason: "body-invalid",
    });
    expect(
      (await refusal(matrixEvent("m.room.message", { msgtype: "m.text", body: ["x"] }))).detail,
    ).toMatchObject({ reason: "body-invalid" });
  });

  it("Matrix inbound - a body over the limit in UTF-8 bytes is refused, without its text in the error", async () => {
    // 400 characters, 1200 bytes: the limit counts bytes.
    const body = "€".repeat(400);
    const error = await refusal(text(body));
    expect(error.detail).toMatchObject({ reason: "body-too-large" });
    expect(error.message).toContain("1200 bytes");
    expect(`${error.message}${JSON.stringify(error.detail)}`).not.toContain("€");
    await normalised(text("€".repeat(341)));
  });

  it("Matrix inbound - the message's own marking wins over the room's; a bad one is refused", async () => {
    const roomMarked = context({ roomMarking: "EU-RESTRICTED" });
    expect((await normalised(text("x"), roomMarked)).marking).toBe("EU-RESTRICTED");
    expect((await normalised(text("x", { "eu.fedgate.marking": "DE-VS-NFD" }), roomMarked)).marking).toBe(
      "DE-VS-NFD",
    );
    expect((await normalised(text("x"))).marking).toBeUndefined();
    for (const bad of ["vs-nfd", "", 42, "A".repeat(65)]) {
      expect((await refusal(text("x", { "eu.fedgate.marking": bad }))).detail).toMatchObject({
        reason: "marking-invalid",
      });
    }
  });

  it("Matrix inbound - a redaction of a known event is message.deleted, in old and v11 rooms", async () => {
    const old = await normalised(matrixEvent("m.room.redaction", {}, { redacts: "$orig:tchap.localhost" }));
    expect(old.type).toBe("message.deleted");
    expect(old.relations).toEqual({ redacts: "evt-original-0001" });
    const v11 = await normalised(matrixEvent("m.room.redaction", { redacts: "$other:tchap.localhost" }));
    expect(v11.relations).toEqual({ redacts: "evt-original-0002" });
    expect(
      await toNormalisedEvent(matrixEvent("m.room.redaction", { redacts: "$unseen:hs" }), context()),
    ).toBeUndefined();
    expect((await refusal(matrixEvent("m.room.redaction", {}))).detail).toMatchObject({
      reason: "redacts-missing",
    });
  });

  it("Matrix inbound - a reaction on a known event is reaction.added; on an unknown one nothing", async () => {
    const reaction = (key: unknown, target = "$orig:tchap.localhost") =>
      matrixEvent("m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: target, key } });
    const event = await normalised(reaction("👍"));
    expect(event.type).toBe("reaction.added");
    expect(event.content).toEqual({ reaction: "👍" });
    expect(event.relations).toEqual({ reactsTo: "evt-original-0001" });
    expect(await toNormalisedEvent(reaction("👍", "$unseen:hs"), context())).toBeUndefined();
    // The schema counts code points: 64 emoji (128 UTF-16 units) fit.
    await normalised(reaction("👍".repeat(64)));
    expect((await refusal(reaction("a".repeat(65)))).detail).toMatchObject({
      reason: "reaction-key-too-long",
    });
    expect((await refusal(reaction(""))).detail).toMatchObject({ reason: "reaction-key-missing" });
    // A key of nothing but what no other network can carry (a lone surrogate, found by the fuzz test) is none.
    expect((await refusal(reaction("\ud800"))).detail).toMatchObject({ reason: "reaction-key-missing" });
    expect(
      (await refusal(matrixEvent("m.reaction", { "m.relates_to": { rel_type: "m.reference" } }))).detail,
    ).toMatchObject({ reason: "reaction-invalid" });
  });

  it("Matrix inbound - joins and leaves are membership events for the user in state_key", async () => {
    const member = (membership: string, prev?: string, extra: Record<string, unknown> = {}) =>
      matrixEvent(
        "m.room.member",
        { membership, ...extra },
        {
          state_key: "@lang:tchap.localhost",
          ...(prev === undefined
            ? {}
            : { unsigned: { prev_content: { membership: prev, displayname: "Lang" } } }),
        },
      );
    const joined = await normalised(member("join", "invite", { displayname: " KOK Lang " }));
    expect(joined.type).toBe("member.joined");
    expect(joined.sender).toEqual({ userId: "@lang:tchap.localhost", displayName: "KOK Lang" });
    expect((await normalised(member("join"))).type).toBe("member.joined");
    // A new display name is no arrival.
    expect(
      await toNormalisedEvent(member("join", "join", { displayname: "Neu" }), context()),
    ).toBeUndefined();
    const left = await normalised(member("leave", "join"));
    expect(left.type).toBe("member.left");
    expect(left.sender).toEqual({ userId: "@lang:tchap.localhost", displayName: "Lang" });
    expect((await normalised(member("ban", "join"))).type).toBe("member.left");
    expect(await toNormalisedEvent(member("invite"), context())).toBeUndefined();
    expect(await toNormalisedEvent(member("knock"), context())).toBeUndefined();
    // A refused invitation: the user was never in the conversation.
    expect(await toNormalisedEvent(member("leave", "invite"), context())).toBeUndefined();
    expect((await refusal(matrixEvent("m.room.member", { membership: "join" }))).detail).toMatchObject({
      reason: "state-key-missing",
    });
  });

  it("Matrix inbound - other event types are nothing to bridge", async () => {
    for (const type of ["m.room.topic", "m.room.encrypted", "m.typing", "eu.fedgate.marking"]) {
      expect(await toNormalisedEvent(matrixEvent(type, { body: "x" }, { state_key: "" }), context())).toBe(
        undefined,
      );
    }
  });
});
