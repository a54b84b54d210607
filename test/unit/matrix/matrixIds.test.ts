import { describe, expect, it } from "vitest";
import {
  isEventId,
  isRoomId,
  isServerName,
  isUserId,
  loggableId,
  serverOf,
} from "../../../bridges/matrix/matrixIds.js";

describe("Matrix ids", () => {
  it("Matrix ids - server names: DNS names, IPv4 and bracketed IPv6 addresses, with a port", () => {
    for (const name of ["tchap.gouv.fr", "localhost", "127.0.0.1:8448", "[::1]", "[2001:db8::1]:8448"])
      expect(isServerName(name), name).toBe(true);
    for (const name of ["", "tchap gouv", "evil.example/", "::1", "x:", "x:123456", "é.fr", "[zz]"])
      expect(isServerName(name), name).toBe(false);
  });

  it("Matrix ids - a user id is @localpart:server within 255 bytes; its server is after the first colon", () => {
    expect(isUserId("@claire.martin:tchap.gouv.fr")).toBe(true);
    expect(isUserId("@Historic!Name:[::1]:8448")).toBe(true);
    expect(serverOf("@claire:tchap.gouv.fr")).toBe("tchap.gouv.fr");
    expect(serverOf("@claire:[::1]:8448")).toBe("[::1]:8448");
    const longest = `@${"a".repeat(255 - ":x.fr".length - 1)}:x.fr`;
    expect(isUserId(longest)).toBe(true);
    expect(isUserId(`@a${longest.slice(1)}`)).toBe(false);
    for (const id of ["claire:tchap", "@claire", "@:tchap", "@cl aire:tchap", "@clé:tchap", "@claire:"])
      expect(isUserId(id), id).toBe(false);
  });

  it("Matrix ids - room ids name their server before room version 12, and none from it on", () => {
    expect(isRoomId("!abc:tchap.gouv.fr")).toBe(true);
    expect(serverOf("!abc:tchap.gouv.fr")).toBe("tchap.gouv.fr");
    expect(isRoomId("!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM")).toBe(true);
    expect(serverOf("!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM")).toBeUndefined();
    for (const id of ["abc:tchap", "!", "!:tchap", "!abc:bad server", `!${"r".repeat(255)}`, "#a:tchap"])
      expect(isRoomId(id), id).toBe(false);
  });

  it("Matrix ids - event ids: a dollar and printable ASCII, at most 255 bytes", () => {
    expect(isEventId("$143273582443PhrSn:example.org")).toBe(true);
    expect(isEventId("$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk")).toBe(true);
    expect(isEventId(`$${"a".repeat(254)}`)).toBe(true);
    for (const id of ["$", "abc", "$a b", "$é", `$${"a".repeat(255)}`, `$${"a".repeat(4000)}`])
      expect(isEventId(id), id.slice(0, 20)).toBe(false);
  });

  it("Matrix ids - a hostile id is cut for the log", () => {
    expect(loggableId("$abc:hs")).toBe("$abc:hs");
    const cut = loggableId(`$${"a".repeat(4000)}`);
    expect(cut.length).toBeLessThan(100);
    expect(cut).toContain("4001 characters");
  });
});
