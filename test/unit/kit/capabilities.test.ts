import { describe, expect, it } from "vitest";
import { type Capabilities, unsupportedReason } from "../../../bridges/kit/capabilities.js";
import { matrixCapabilities } from "../../../bridges/matrix/capabilities.js";
import { stashcatCapabilities } from "../../../bridges/stashcat/capabilities.js";
import { xmppCapabilities } from "../../../bridges/xmpp/capabilities.js";
import type { NormalisedEvent } from "../../../schemas/types.js";

const types: NormalisedEvent["type"][] = [
  "message.created",
  "message.edited",
  "message.deleted",
  "reaction.added",
  "reaction.removed",
  "member.joined",
  "member.left",
  "notice",
];

function shown(capabilities: Capabilities): string[] {
  return types.filter((type) => unsupportedReason("net", capabilities, type) === undefined);
}

describe("capabilities", () => {
  it("capabilities - each network shows what it declares, and nothing is refused that it can show", () => {
    expect(shown(matrixCapabilities)).toEqual(types);
    expect(shown(xmppCapabilities)).toEqual(types.filter((t) => t !== "member.joined"));
    expect(shown(stashcatCapabilities)).toEqual(types.filter((t) => !t.startsWith("member.")));
  });

  it("capabilities - a network that shows nothing but messages says why for each kind", () => {
    const bare: Capabilities = {
      edits: "none",
      deletions: "none",
      reactions: "none",
      membership: "none",
      files: false,
      directChats: false,
      catchUp: false,
    };
    expect(shown(bare)).toEqual(["message.created", "notice"]);
    expect(unsupportedReason("loopback", bare, "message.edited")).toBe(
      "loopback shows no corrections of people on other networks",
    );
  });
});
