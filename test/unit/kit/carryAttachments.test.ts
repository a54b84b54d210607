import { describe, expect, it } from "vitest";
import { carryAttachments } from "../../../bridges/kit/carryAttachments.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import type { Attachment, NormalisedEvent } from "../../../schemas/types.js";

const log = createLogger("silent");
const file = (name: string): Attachment => ({
  url: `https://files.example/${name}`,
  name,
  mediaType: "application/pdf",
  size: 10,
  sha256: "0".repeat(64),
});
const event: NormalisedEvent = {
  specVersion: "1",
  id: "event-00000001",
  type: "message.created",
  source: { network: "xmpp", instance: "bpol", conversation: "lage@conference.bpol" },
  sender: { userId: "weber@bpol" },
  content: { body: "Pläne", attachments: [file("a.pdf"), file("b.pdf"), file("c.pdf")] },
  timestamp: "2026-12-07T10:00:00.000Z",
};

describe("carryAttachments", () => {
  it("carryAttachments - each file in order; one refused for good is named, and the rest still carried", async () => {
    const { carried, notCarried } = await carryAttachments(
      event,
      (attachment) => {
        if (attachment.name === "b.pdf")
          return Promise.reject(new PermanentError("FG_ATTACHMENT_INVALID", "larger than 10 MiB"));
        if (attachment.name === "c.pdf") return Promise.reject(new Error("unexpected"));
        return Promise.resolve(`id-${attachment.name}`);
      },
      log,
      "test",
    );
    expect(carried.map((c) => c.result)).toEqual(["id-a.pdf"]);
    expect(notCarried.map((n) => [n.attachment.name, n.reason])).toEqual([
      ["b.pdf", "larger than 10 MiB"],
      ["c.pdf", "unexpected"],
    ]);
  });

  it("carryAttachments - a transient failure fails the delivery, to be retried whole", async () => {
    let tried = 0;
    await expect(
      carryAttachments(
        event,
        () => {
          tried += 1;
          return Promise.reject(new TransientError("FG_PEER_UNAVAILABLE", "upload service away"));
        },
        log,
        "test",
      ),
    ).rejects.toMatchObject({ code: "FG_PEER_UNAVAILABLE" });
    expect(tried).toBe(1);
  });
});
