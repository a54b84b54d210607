import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  directConversation,
  directLink,
  directLinkId,
  parseDirectConversation,
} from "../../../schemas/contract/directConversations.js";
import { validateLink } from "../../../schemas/contract/schemas.js";

const officer = { network: "xmpp", instance: "bpol", userId: "weber@bpol.example" };
const claire = { network: "matrix", instance: "tchap", userId: "@claire.martin:tchap.gouv.fr" };

describe("direct conversations - one id names both people", () => {
  it("direct conversations - reads as participant|network/instance/peer", () => {
    expect(directConversation(officer.userId, claire)).toBe(
      "weber@bpol.example|matrix/tchap/@claire.martin:tchap.gouv.fr",
    );
  });

  it("direct conversations - any two user ids survive the round trip, bars and percents included", () => {
    const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,31}$/);
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), token, token, fc.string({ minLength: 1 }), (p, n, i, u) => {
        const peer = { network: n, instance: i, userId: u };
        expect(parseDirectConversation(directConversation(p, peer))).toEqual({ participant: p, peer });
      }),
    );
    expect(parseDirectConversation(directConversation("a|b%7C", { ...claire, userId: "x/y|z" }))).toEqual({
      participant: "a|b%7C",
      peer: { ...claire, userId: "x/y|z" },
    });
  });

  it("direct conversations - a room id, or a malformed peer, is not a direct conversation", () => {
    for (const id of [
      "lage@conference.bpol.example",
      "!room:tchap",
      "a|matrix/tchap/",
      "a|Matrix/tchap/x",
      "|x/y/z",
    ])
      expect(parseDirectConversation(id)).toBeUndefined();
  });

  it("direct conversations - both sides build the same valid link, whoever opens it", () => {
    const fromXmpp = directLink(officer, "bpol", claire, "dinum-mi");
    const fromMatrix = directLink(claire, "dinum-mi", officer, "bpol");
    expect(fromXmpp.id).toBe(fromMatrix.id);
    expect(fromXmpp.id).toBe(directLinkId(claire, officer));
    expect(new Set(fromXmpp.endpoints.map((e) => e.conversation))).toEqual(
      new Set(fromMatrix.endpoints.map((e) => e.conversation)),
    );
    expect(validateLink(fromXmpp).endpoints.every((e) => e.kind === "direct")).toBe(true);
  });
});
