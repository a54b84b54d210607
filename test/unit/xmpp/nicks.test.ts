import { describe, expect, it } from "vitest";
import { nickCandidates, puppetNick } from "../../../bridges/xmpp/nicks.js";
import type { Delivery } from "../../../schemas/types.js";

describe("nicks - what fedgate's occupants are called in a room", () => {
  const from = (displayName: string, agency = "Ministère de l'Intérieur"): Delivery => ({
    specVersion: "1",
    id: "d1",
    event: {
      specVersion: "1",
      id: "e1",
      type: "message.created",
      source: { network: "matrix", instance: "tchap", conversation: "!r:tchap" },
      sender: { userId: "@claire:tchap", displayName },
      timestamp: "2024-01-01T00:00:00Z",
    },
    target: { network: "xmpp", instance: "bpol", conversation: "r@muc", agency: "bpol" },
    senderAgency: { id: "dinum-mi", name: agency, country: "FR" },
  });

  it("nicks - controls, bidi overrides and joiners leave a puppet's nick; other spaces become plain ones", () => {
    expect(puppetNick(from("Claire\u0007 Martin"))).toBe("Claire Martin (Ministère de l'Intérieur)");
    expect(puppetNick(from("\u202EClaire\u202C\u00A0Martin\u2028"))).toBe(
      "Claire Martin (Ministère de l'Intérieur)",
    );
    expect(puppetNick(from("Claire 👮\u200D\u2640\uFE0F"))).toBe(
      "Claire 👮\u2640\uFE0F (Ministère de l'Intérieur)",
    );
  });

  it("nicks - the nicks to fall back on are numbered, the same ones every time", () => {
    const first = (n: number): string[] => {
      const nicks: string[] = [];
      for (const nick of nickCandidates("Claire Martin (DINUM)")) {
        if (nicks.push(nick) === n) break;
      }
      return nicks;
    };
    expect(first(3)).toEqual([
      "Claire Martin (DINUM)",
      "Claire Martin (DINUM) [2]",
      "Claire Martin (DINUM) [3]",
    ]);
    expect(first(3)).toEqual(first(3));
  });
});
