/**
 * Fuzzing what the Stashcat bridge reads from its server: message objects from message/content and the
 * push channel's message_sync payloads, through parsing, decryption and the event's timestamp, as the bridge
 * takes them. 10,000 inputs each; nothing but typed errors.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decryptText, encryptText, newKey } from "../../../bridges/stashcat/crypto.js";
import { parseMessage } from "../../../bridges/stashcat/messages.js";
import { FUZZ_RUNS, fuzz, hostileValue, mutated } from "../../helpers/fuzz.js";

const key = newKey();
const sealed = encryptText("Lage in Hannover ruhig", key);

/** A channel message as message/content and message_sync carry it. */
const wireMessage = {
  id: 5001,
  text: sealed.text,
  iv: sealed.iv,
  encrypted: true,
  conversation_id: 0,
  channel_id: 1001,
  time: "1767225600",
  sender: { id: 4711, first_name: "Anna", last_name: "Meyer" },
  kind: "message",
  files: [{ id: 77, name: "lage.pdf" }],
  likes: 2,
  deleted: null,
  is_deleted_by_manager: false,
  reply_to: { message_id: 5000 },
  metainfo: '{"style":"md"}',
};

/** What the bridge does with a message it read: decrypt it and date it. */
function take(raw: unknown, chat?: { type: "channel" | "conversation"; id: number }): void {
  const message = parseMessage(raw, chat);
  if (message.encrypted) decryptText(message.text, message.iv ?? "", key);
  // The event's timestamp: an invalid date throws a RangeError here.
  new Date(message.time * 1000).toISOString();
}

describe("fuzz - Stashcat input", () => {
  it("fuzz - Stashcat message objects from message/content: typed errors only", async () => {
    const outcomes = await fuzz(fc.oneof(mutated(wireMessage), hostileValue), (raw) =>
      take(raw, { type: "channel", id: 1001 }),
    );
    // Both ways taken often: the inputs reach past the first check.
    expect(outcomes.accepted).toBeGreaterThan(FUZZ_RUNS / 20);
    expect(outcomes.refused).toBeGreaterThan(FUZZ_RUNS / 4);
  });

  it("fuzz - Stashcat push payloads (message_sync): typed errors only", async () => {
    const payload = fc.oneof(
      mutated(wireMessage),
      // Some servers wrap it, or send it as JSON text.
      mutated({ message: wireMessage }),
      mutated(wireMessage).map((m) => JSON.stringify(m)),
      hostileValue,
    );
    const outcomes = await fuzz(payload, (raw) => take(raw));
    expect(outcomes.accepted).toBeGreaterThan(FUZZ_RUNS / 40);
    expect(outcomes.refused).toBeGreaterThan(FUZZ_RUNS / 4);
  });
});
