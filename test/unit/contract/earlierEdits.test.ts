import { describe, expect, it } from "vitest";
import { asEarlierEdit, EARLIER_EDIT_MARK } from "../../../schemas/contract/earlierEdits.js";
import { validateEvent } from "../../../schemas/contract/schemas.js";
import { message, xmppRoom } from "../../helpers/fixtures.js";

describe("earlierEdits - an edit of a forgotten message as a new message", () => {
  it("earlierEdits - the text and its formatted form are marked as an edit", () => {
    expect(asEarlierEdit({ body: "11 Uhr", html: "<b>11</b> Uhr" })).toEqual({
      body: `${EARLIER_EDIT_MARK} 11 Uhr`,
      html: `<em>${EARLIER_EDIT_MARK}</em> <b>11</b> Uhr`,
    });
  });

  it("earlierEdits - an edit as long as the schema allows still fits once marked: the text is cut, never the mark", () => {
    const body = "ä".repeat(65_536);
    const content = asEarlierEdit({ body, html: "<p>" + "x".repeat(131_064) + "</p>" });
    expect(content.body?.startsWith(EARLIER_EDIT_MARK)).toBe(true);
    expect(content.html).toBeUndefined();
    expect(() => validateEvent(message(xmppRoom, "", { content }))).not.toThrow();
  });
});
