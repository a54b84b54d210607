import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Delivery, NormalisedEvent } from "../../../schemas/types.js";
import { schemaDir, validateDelivery, validateEvent } from "../../../schemas/contract/schemas.js";
import { encodeDelivery } from "../../../gateway/core/routing/encodeDelivery.js";

const examples = ["event-message.json", "event-edit.json", "event-reaction.json"].map((file) =>
  readFileSync(join(schemaDir, "examples", file), "utf8"),
);
const rest: Omit<Delivery, "event"> = {
  specVersion: "1",
  id: "0b9c7e0e-5a0f-4b8e-9a53-3c6d2f1e8a10.5e884898da280471",
  target: {
    network: "matrix",
    instance: "tchap",
    conversation: "!lage:tchap.example",
    agency: "dinum-mi",
    kind: "room",
  },
  senderAgency: { id: "bpol", name: "Bundespolizei", country: "DE" },
  marking: { id: "FR-DR", label: "DIFFUSION RESTREINTE", original: "DE-VS-NFD" },
};

describe("encodeDelivery - the event's published bytes, spliced into the delivery", () => {
  it("encodeDelivery - parses to the delivery the whole object would serialise to, and is a valid delivery", () => {
    for (const text of examples) {
      // Pretty-printed and with text beyond ASCII: the bytes go in as they were published.
      const published = new TextEncoder().encode(text.replace('"body": "', '"body": "Grenzübergang — '));
      const event = validateEvent(JSON.parse(new TextDecoder().decode(published)));
      const spliced = JSON.parse(new TextDecoder().decode(encodeDelivery(rest, published))) as unknown;
      expect(spliced).toEqual({ ...rest, event });
      expect(validateDelivery(spliced)).toEqual({ ...rest, event });
    }
  });

  it("encodeDelivery - validating an event adds nothing to it, so its bytes are the event the router judged", () => {
    for (const text of examples) {
      const event = JSON.parse(text) as NormalisedEvent;
      expect(validateEvent(structuredClone(event))).toEqual(event);
    }
  });
});
