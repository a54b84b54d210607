import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeMessage } from "../../../gateway/cli/eventsCommands.js";
import { schemaDir } from "../../../schemas/contract/schemas.js";

const example = async (name: string): Promise<Uint8Array> => readFile(join(schemaDir, "examples", name));

describe("events tail - one readable line per record", () => {
  it("events tail - an audit batch shows decision, reason, route and detail", async () => {
    const [line] = describeMessage("audit", await example("audit-batch.json"));
    expect(line).toMatch(
      /^DENY +marking-above-route +message\.created stashcat\/ni\/channel:1001 \(polizei-ni\) -> matrix\/tchap\/!lage:tchap\.example \(dinum-mi\): route/,
    );
  });

  it("events tail - a delivery shows target, sender, agency, the marking as the target sees it, and the text", async () => {
    const [line] = describeMessage("outbound", await example("delivery.json"));
    expect(line).toBe(
      '-> matrix/tchap/!lage:tchap.example (dinum-mi)  message.created from Kommissarin Weber (Bundespolizei) [DIFFUSION RESTREINTE]: "Lagebesprechung um 14 Uhr"',
    );
  });
});
