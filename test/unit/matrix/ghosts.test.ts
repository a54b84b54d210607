import { describe, expect, it } from "vitest";
import { encodeLocalpart, ghostUserId, isGhost, localpartOf } from "../../../bridges/matrix/ghosts.js";
import { withTopicMarking } from "../../../bridges/matrix/RoomMarkings.js";

const naming = { prefix: "fedgate_", serverName: "tchap.gouv.fr" };
const localpartGrammar = /^[a-z0-9._=\-/]+$/;

describe("Matrix ghosts", () => {
  it("Matrix ghosts - a remote user id becomes a valid localpart as the spec's appendix maps it", () => {
    expect(encodeLocalpart("weber@bpol.example")).toBe("weber=40bpol.example");
    expect(encodeLocalpart("Weber_K")).toBe("_weber___k");
    expect(encodeLocalpart("müller")).toBe("m=c3=bcller");
    expect(ghostUserId(naming, { network: "xmpp", instance: "bpol", userId: "weber@bpol.example" })).toBe(
      "@fedgate_xmpp_bpol_weber=40bpol.example:tchap.gouv.fr",
    );
  });

  it("Matrix ghosts - different remote people never share a ghost, and every ghost is valid", () => {
    const ids = ["Weber", "weber", "_weber", "we ber", "we=ber", "weber@x", "WEBER", "4711", "a/b"];
    const ghosts = ids.map((userId) => ghostUserId(naming, { network: "stashcat", instance: "ni", userId }));
    expect(new Set(ghosts).size).toBe(ids.length);
    for (const ghost of ghosts) {
      expect(localpartOf(ghost)).toMatch(localpartGrammar);
      expect(isGhost(naming, ghost)).toBe(true);
    }
  });

  it("Matrix ghosts - an overlong id is cut to Matrix's 255 bytes and stays distinct", () => {
    const long = (tail: string): string =>
      ghostUserId(naming, { network: "xmpp", instance: "bpol", userId: `${"ü".repeat(200)}${tail}` });
    expect(Buffer.byteLength(long("a"))).toBeLessThanOrEqual(255);
    expect(long("a")).not.toBe(long("b"));
    expect(localpartOf(long("a"))).toMatch(localpartGrammar);
  });

  it("Matrix ghosts - only the bridge's namespace on its own server is a ghost", () => {
    expect(isGhost(naming, "@claire:tchap.gouv.fr")).toBe(false);
    expect(isGhost(naming, "@fedgate_xmpp_bpol_x:other.example")).toBe(false);
  });
});

describe("Matrix bridge helpers", () => {
  it("Matrix bridge - the room topic leads with the marking, replacing the one before", () => {
    expect(withTopicMarking("Lage Nord", "DE-VS-NFD")).toBe("[DE-VS-NFD] Lage Nord");
    expect(withTopicMarking("[DE-VS-NFD] Lage Nord", "FR-DR")).toBe("[FR-DR] Lage Nord");
    expect(withTopicMarking("[DE-VS-NFD] Lage Nord", undefined)).toBe("Lage Nord");
    expect(withTopicMarking("", "FR-DR")).toBe("[FR-DR]");
  });
});
