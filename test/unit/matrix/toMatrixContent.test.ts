import { describe, expect, it } from "vitest";
import { encryptAttachment, encryptedFile } from "../../../bridges/matrix/crypto/encryptedAttachment.js";
import { parseMatrixEvent } from "../../../bridges/matrix/matrixEvents.js";
import { toMatrixContent, type OutboundOptions } from "../../../bridges/matrix/toMatrixContent.js";
import { toNormalisedEvent, type InboundContext } from "../../../bridges/matrix/toNormalisedEvent.js";
import type { NativeRelations } from "../../../bridges/kit/AdapterRuntime.js";
import { validateEvent } from "../../../schemas/contract/schemas.js";
import type { Attachment, NormalisedEvent } from "../../../schemas/types.js";

const noUploads: OutboundOptions = { uploaded: new Map() };

function event(overrides: Partial<NormalisedEvent>): NormalisedEvent {
  return validateEvent({
    specVersion: "1",
    id: "evt-outbound-0001",
    type: "message.created",
    source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol.example" },
    sender: { userId: "weber@bpol.example", displayName: "POK Weber" },
    timestamp: "2025-01-01T12:00:00.000Z",
    ...overrides,
  });
}

function attachment(name: string, mediaType: string, n: number): Attachment {
  return { name, mediaType, size: 100 * n, sha256: "b".repeat(64), url: `https://bpol.example/files/${n}` };
}

describe("Normalised event to Matrix content", () => {
  it("Matrix outbound - a text with HTML is m.text with formatted_body", () => {
    expect(
      toMatrixContent(
        event({ content: { body: "Lage *ruhig*", html: "Lage <em>ruhig</em>" } }),
        {},
        noUploads,
      ),
    ).toEqual([
      {
        type: "m.room.message",
        content: {
          msgtype: "m.text",
          body: "Lage *ruhig*",
          format: "org.matrix.custom.html",
          formatted_body: "Lage <em>ruhig</em>",
        },
      },
    ]);
  });

  it("Matrix outbound - HTML from the bus is sanitised again", () => {
    const [sent] = toMatrixContent(
      event({
        content: {
          body: "x",
          html: '<b>x</b><script>alert(1)</script><img src=x onerror="alert(1)"><a href="javascript:alert(1)">l</a>',
        },
      }),
      {},
      noUploads,
    );
    expect(sent?.content["formatted_body"]).toBe("<b>x</b><a>l</a>");
  });

  it("Matrix outbound - a notice is m.notice, /me is m.emote", () => {
    const [notice] = toMatrixContent(
      event({ type: "notice", content: { body: "/me bleibt" } }),
      {},
      noUploads,
    );
    expect(notice?.content).toEqual({ msgtype: "m.notice", body: "/me bleibt" });
    const [emote] = toMatrixContent(
      event({ content: { body: "/me winkt", html: "/me <em>winkt</em>" } }),
      {},
      noUploads,
    );
    expect(emote?.content).toMatchObject({
      msgtype: "m.emote",
      body: "winkt",
      formatted_body: "<em>winkt</em>",
    });
  });

  it("Matrix outbound - the marking travels in the content and leads the text", () => {
    const marked = event({ content: { body: "Lage", html: "<p>Lage</p>" }, marking: "DE-VS-NFD" });
    expect(toMatrixContent(marked, {}, noUploads)[0]?.content).toEqual({
      msgtype: "m.text",
      body: "[DE-VS-NFD] Lage",
      format: "org.matrix.custom.html",
      formatted_body: "<strong>[DE-VS-NFD]</strong> <p>Lage</p>",
      "eu.fedgate.marking": "DE-VS-NFD",
    });
    const labelled = toMatrixContent(marked, {}, { ...noUploads, markingLabel: () => "VS-NfD <intern>" });
    expect(labelled[0]?.content).toMatchObject({
      body: "[VS-NfD <intern>] Lage",
      formatted_body: "<strong>[VS-NfD &lt;intern&gt;]</strong> <p>Lage</p>",
    });
    const plain = toMatrixContent(event({ content: { body: "Lage" }, marking: "DE-VS-NFD" }), {}, noUploads);
    expect(plain[0]?.content).toEqual({
      msgtype: "m.text",
      body: "[DE-VS-NFD] Lage",
      "eu.fedgate.marking": "DE-VS-NFD",
    });
  });

  it("Matrix outbound - a reply points at the message replied to, without a quote", () => {
    const [reply] = toMatrixContent(
      event({ content: { body: "Ruhig" }, relations: { replyTo: "evt-original-0001" } }),
      { replyTo: "$orig:tchap.localhost" },
      noUploads,
    );
    expect(reply?.content).toEqual({
      msgtype: "m.text",
      body: "Ruhig",
      "m.relates_to": { "m.in_reply_to": { event_id: "$orig:tchap.localhost" } },
    });
    // The message replied to never reached this room: a plain message.
    const [plain] = toMatrixContent(
      event({ content: { body: "Ruhig" }, relations: { replyTo: "evt-original-0001" } }),
      {},
      noUploads,
    );
    expect(plain?.content["m.relates_to"]).toBeUndefined();
  });

  it("Matrix outbound - text first, then each uploaded file; files not uploaded are named in the text", () => {
    const photo = attachment("lage.png", "image/png", 1);
    const clip = attachment("lage.webm", "video/webm", 2);
    const voice = attachment("ruf.ogg", "audio/ogg", 3);
    const report = attachment("bericht.pdf", "application/pdf", 4);
    const big = attachment("karte.tiff", "image/tiff", 5);
    const uploaded = new Map([
      [photo.url, "mxc://tchap.localhost/p"],
      [clip.url, "mxc://tchap.localhost/c"],
      [voice.url, "mxc://tchap.localhost/v"],
      [report.url, "mxc://tchap.localhost/r"],
    ]);
    const sent = toMatrixContent(
      event({
        content: { body: "Anbei", html: "<b>Anbei</b>", attachments: [photo, clip, big, voice, report] },
        relations: { replyTo: "evt-original-0001" },
      }),
      { replyTo: "$orig:tchap.localhost" },
      { uploaded },
    );
    expect(sent.map((s) => s.content["msgtype"])).toEqual([
      "m.text",
      "m.image",
      "m.video",
      "m.audio",
      "m.file",
    ]);
    expect(sent[0]?.content).toMatchObject({
      body: "Anbei\n[file not carried: karte.tiff]",
      formatted_body: "<b>Anbei</b><br>[file not carried: karte.tiff]",
      "m.relates_to": { "m.in_reply_to": { event_id: "$orig:tchap.localhost" } },
    });
    expect(sent[1]?.content).toEqual({
      msgtype: "m.image",
      body: "lage.png",
      url: "mxc://tchap.localhost/p",
      info: { size: 100, mimetype: "image/png" },
    });
    expect(sent[4]?.content).toMatchObject({ body: "bericht.pdf", url: "mxc://tchap.localhost/r" });
    expect(sent.slice(1).every((s) => s.content["m.relates_to"] === undefined)).toBe(true);
  });

  it("Matrix outbound - an encrypted attachment goes as `file`, never as `url`", () => {
    const photo = attachment("lage.png", "image/png", 1);
    const { keys } = encryptAttachment(Buffer.from("png"));
    const file = encryptedFile("mxc://tchap.localhost/enc", keys);
    const sent = toMatrixContent(
      event({ content: { attachments: [photo] } }),
      {},
      { uploaded: new Map([[photo.url, file]]) },
    );
    expect(sent).toEqual([
      {
        type: "m.room.message",
        content: { msgtype: "m.image", body: "lage.png", file, info: { size: 100, mimetype: "image/png" } },
      },
    ]);
  });

  it("Matrix outbound - a message of files only sends only files; the marking is their caption", () => {
    const photo = attachment("lage.png", "image/png", 1);
    const sent = toMatrixContent(
      event({
        content: { attachments: [photo] },
        marking: "DE-VS-NFD",
        relations: { replyTo: "evt-x-0001" },
      }),
      { replyTo: "$orig:tchap.localhost" },
      { uploaded: new Map([[photo.url, "mxc://tchap.localhost/p"]]) },
    );
    expect(sent).toEqual([
      {
        type: "m.room.message",
        content: {
          msgtype: "m.image",
          body: "[DE-VS-NFD] lage.png",
          filename: "lage.png",
          url: "mxc://tchap.localhost/p",
          info: { size: 100, mimetype: "image/png" },
          "eu.fedgate.marking": "DE-VS-NFD",
          "m.relates_to": { "m.in_reply_to": { event_id: "$orig:tchap.localhost" } },
        },
      },
    ]);
    // No file could be carried: the text says so.
    expect(toMatrixContent(event({ content: { attachments: [photo] } }), {}, noUploads)).toEqual([
      { type: "m.room.message", content: { msgtype: "m.text", body: "[file not carried: lage.png]" } },
    ]);
  });

  it("Matrix outbound - an edit replaces the original as the spec says; without it nothing", () => {
    const edited = event({
      type: "message.edited",
      content: { body: "neu", html: "<b>neu</b>" },
      relations: { replaces: "evt-original-0001" },
      marking: "DE-VS-NFD",
    });
    expect(toMatrixContent(edited, { replaces: "$orig:tchap.localhost" }, noUploads)).toEqual([
      {
        type: "m.room.message",
        content: {
          msgtype: "m.text",
          body: "* [DE-VS-NFD] neu",
          format: "org.matrix.custom.html",
          formatted_body: "* <strong>[DE-VS-NFD]</strong> <b>neu</b>",
          "eu.fedgate.marking": "DE-VS-NFD",
          "m.new_content": {
            msgtype: "m.text",
            body: "[DE-VS-NFD] neu",
            format: "org.matrix.custom.html",
            formatted_body: "<strong>[DE-VS-NFD]</strong> <b>neu</b>",
            "eu.fedgate.marking": "DE-VS-NFD",
          },
          "m.relates_to": { rel_type: "m.replace", event_id: "$orig:tchap.localhost" },
        },
      },
    ]);
    expect(toMatrixContent(edited, {}, noUploads)).toEqual([]);
  });

  it("Matrix outbound - a reaction annotates its message; without it, and for the bridge's own work, nothing", () => {
    const reaction = event({
      type: "reaction.added",
      content: { reaction: "👍" },
      relations: { reactsTo: "evt-original-0001" },
    });
    expect(toMatrixContent(reaction, { reactsTo: "$orig:tchap.localhost" }, noUploads)).toEqual([
      {
        type: "m.reaction",
        content: {
          "m.relates_to": { rel_type: "m.annotation", event_id: "$orig:tchap.localhost", key: "👍" },
        },
      },
    ]);
    expect(toMatrixContent(reaction, {}, noUploads)).toEqual([]);
    const all: NativeRelations = {
      replyTo: "$a:hs",
      replaces: "$a:hs",
      redacts: "$a:hs",
      reactsTo: "$a:hs",
    };
    expect(toMatrixContent({ ...reaction, type: "reaction.removed" }, all, noUploads)).toEqual([]);
    expect(
      toMatrixContent(
        event({ type: "message.deleted", relations: { redacts: "evt-original-0001" } }),
        all,
        noUploads,
      ),
    ).toEqual([]);
    expect(toMatrixContent(event({ type: "member.joined" }), all, noUploads)).toEqual([]);
    expect(toMatrixContent(event({ type: "member.left" }), all, noUploads)).toEqual([]);
  });
});

/** Matrix events and the gateway ids they were given. */
const map = new Map([["$orig:tchap.localhost", "evt-original-0001"]]);

function inbound(): InboundContext {
  return {
    instance: "tchap",
    conversation: "!lage:tchap.localhost",
    sender: { userId: "@weber:tchap.localhost" },
    eventId: "evt-roundtrip-0001",
    maxBodyBytes: 65_536,
    eventIdOf: (id) => Promise.resolve(map.get(id)),
    describeMedia: () => Promise.reject(new Error("no media here")),
  };
}

/** What fedgate would send back to Matrix for this content: in, normalised, and out again. */
async function roundTrip(type: string, content: Record<string, unknown>): Promise<Record<string, unknown>> {
  const matrix = parseMatrixEvent({
    event_id: "$new:tchap.localhost",
    room_id: "!lage:tchap.localhost",
    sender: "@weber:tchap.localhost",
    type,
    origin_server_ts: 1_700_000_000_000,
    content,
  });
  const normalisedEvent = validateEvent(await toNormalisedEvent(matrix, inbound()));
  // The relations as the runtime resolves them in the target room: back to Matrix ids.
  const native = new Map([...map].map(([matrixId, gatewayId]) => [gatewayId, matrixId]));
  const gatewayRelations: Record<string, string> = { ...normalisedEvent.relations };
  const relations: NativeRelations = Object.fromEntries(
    Object.entries(gatewayRelations).map(([key, id]) => [key, native.get(id)]),
  );
  const sent = toMatrixContent(normalisedEvent, relations, noUploads);
  expect(sent).toHaveLength(1);
  expect(sent[0]?.type).toBe(type);
  return sent[0]?.content ?? {};
}

describe("Matrix round trip", () => {
  it("Matrix round trip - text with HTML", async () => {
    const content = {
      msgtype: "m.text",
      body: "Lage **ruhig**\nZweite Zeile",
      format: "org.matrix.custom.html",
      formatted_body:
        '<p>Lage <strong>ruhig</strong><br />Zweite <a href="https://example.org/">Zeile</a></p>',
    };
    expect(await roundTrip("m.room.message", content)).toEqual(content);
  });

  it("Matrix round trip - emote", async () => {
    const content = {
      msgtype: "m.emote",
      body: "winkt",
      format: "org.matrix.custom.html",
      formatted_body: "<em>winkt</em>",
    };
    expect(await roundTrip("m.room.message", content)).toEqual(content);
  });

  it("Matrix round trip - reply, its quote for older clients dropped", async () => {
    const relates = { "m.in_reply_to": { event_id: "$orig:tchap.localhost" } };
    expect(
      await roundTrip("m.room.message", {
        msgtype: "m.text",
        body: "> <@lang:tchap.localhost> Lage?\n\nRuhig",
        "m.relates_to": relates,
      }),
    ).toEqual({ msgtype: "m.text", body: "Ruhig", "m.relates_to": relates });
  });

  it("Matrix round trip - edit", async () => {
    const content = {
      msgtype: "m.text",
      body: "* neu",
      format: "org.matrix.custom.html",
      formatted_body: "* <b>neu</b>",
      "m.new_content": {
        msgtype: "m.text",
        body: "neu",
        format: "org.matrix.custom.html",
        formatted_body: "<b>neu</b>",
      },
      "m.relates_to": { rel_type: "m.replace", event_id: "$orig:tchap.localhost" },
    };
    expect(await roundTrip("m.room.message", content)).toEqual(content);
  });

  it("Matrix round trip - reaction", async () => {
    const content = {
      "m.relates_to": { rel_type: "m.annotation", event_id: "$orig:tchap.localhost", key: "👍🏽" },
    };
    expect(await roundTrip("m.reaction", content)).toEqual(content);
  });

  it("Matrix round trip - a marked message keeps its marking", async () => {
    const sent = await roundTrip("m.room.message", {
      msgtype: "m.text",
      body: "Lage",
      "eu.fedgate.marking": "DE-VS-NFD",
    });
    expect(sent).toEqual({ msgtype: "m.text", body: "[DE-VS-NFD] Lage", "eu.fedgate.marking": "DE-VS-NFD" });
  });
});
