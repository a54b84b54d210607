/**
 * Fuzzing what the Matrix bridge reads from its homeserver: room events as AS transactions carry them, through
 * parsing and translation into a normalised event, as the bridge takes them. 10,000 inputs; nothing but typed
 * errors, and whatever is accepted is an event the contract accepts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normaliseMediaType } from "../../../bridges/kit/fetchAttachment.js";
import { parseMatrixEvent } from "../../../bridges/matrix/matrixEvents.js";
import { toNormalisedEvent } from "../../../bridges/matrix/toNormalisedEvent.js";
import { FUZZ_RUNS, fuzz, hostileValue, mustMeetContract, mutated } from "../../helpers/fuzz.js";

const room = "!einsatz:tchap.localhost";
const base = {
  event_id: "$abc123:tchap.localhost",
  room_id: room,
  sender: "@claire:tchap.localhost",
  origin_server_ts: 1767225600000,
  unsigned: { age: 12 },
};

/** One template per kind of event the bridge bridges. */
const templates = [
  {
    ...base,
    type: "m.room.message",
    content: {
      msgtype: "m.text",
      body: "> <@bob:tchap.localhost> Lage?\n\nRuhig",
      format: "org.matrix.custom.html",
      formatted_body: "<mx-reply>…</mx-reply><b>Ruhig</b>",
      "eu.fedgate.marking": "FR-DR",
      "m.relates_to": { "m.in_reply_to": { event_id: "$orig:tchap.localhost" } },
    },
  },
  {
    ...base,
    type: "m.room.message",
    content: {
      msgtype: "m.image",
      body: "lage.png",
      filename: "lage.png",
      url: "mxc://tchap.localhost/abc",
      info: { mimetype: "image/png", size: 1234 },
    },
  },
  {
    ...base,
    type: "m.room.message",
    content: {
      msgtype: "m.text",
      body: "* Korrektur",
      "m.new_content": { msgtype: "m.text", body: "Korrektur" },
      "m.relates_to": { rel_type: "m.replace", event_id: "$orig:tchap.localhost" },
    },
  },
  {
    ...base,
    type: "m.reaction",
    content: { "m.relates_to": { rel_type: "m.annotation", event_id: "$orig:tchap.localhost", key: "👍" } },
  },
  { ...base, type: "m.room.redaction", redacts: "$orig:tchap.localhost", content: { reason: "falsch" } },
  {
    ...base,
    type: "m.room.member",
    state_key: "@claire:tchap.localhost",
    content: { membership: "join", displayname: "Claire Martin" },
  },
];

async function take(raw: unknown): Promise<void> {
  const event = parseMatrixEvent(raw);
  const normalised = await toNormalisedEvent(event, {
    instance: "tchap",
    conversation: room,
    sender: { userId: event.sender, displayName: "Claire Martin" },
    eventId: "0123456789abcdef0123456789abcdef",
    maxBodyBytes: 65_536,
    eventIdOf: () => Promise.resolve("fedcba9876543210fedcba9876543210"),
    describeMedia: (media) =>
      Promise.resolve({
        name: media.name,
        mediaType: normaliseMediaType(media.mediaType),
        size: media.size ?? 0,
        sha256: "0".repeat(64),
        url: "http://127.0.0.1:9000/_fedgate/media/v1/x",
      }),
  });
  mustMeetContract(normalised);
}

describe("fuzz - Matrix input", () => {
  it("fuzz - Matrix room events from AS transactions: typed errors only", async () => {
    const input = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...templates).chain((t) => mutated(t)) },
      { weight: 2, arbitrary: hostileValue },
    );
    const outcomes = await fuzz(input, (raw) => take(raw));
    expect(outcomes.accepted).toBeGreaterThan(FUZZ_RUNS / 20);
    expect(outcomes.refused).toBeGreaterThan(FUZZ_RUNS / 4);
  });
});
