import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { escapeRegex, generateRegistration } from "../../../bridges/matrix/registration.js";
import { PermanentError } from "../../../schemas/contract/errors.js";

const base = { id: "fedgate", url: "http://127.0.0.1:9000", serverName: "tchap.localhost" };

describe("Matrix registration", () => {
  it("Matrix registration - holds fresh 32-byte tokens, the bot and exclusive ghost namespaces", () => {
    const { registration } = generateRegistration(base);
    expect(Buffer.from(registration.as_token, "base64url")).toHaveLength(32);
    expect(Buffer.from(registration.hs_token, "base64url")).toHaveLength(32);
    expect(registration.as_token).not.toBe(registration.hs_token);
    expect(generateRegistration(base).registration.hs_token).not.toBe(registration.hs_token);
    expect(registration).toMatchObject({
      id: "fedgate",
      url: "http://127.0.0.1:9000",
      sender_localpart: "fedgate",
      rate_limited: false,
      namespaces: {
        users: [{ exclusive: true, regex: "@fedgate_.*:tchap\\.localhost$" }],
        aliases: [{ exclusive: true, regex: "#fedgate_.*:tchap\\.localhost$" }],
        rooms: [],
      },
    });
  });

  it("Matrix registration - opts in to what encrypted rooms need, with the keys Synapse 1.160 reads", () => {
    const { registration } = generateRegistration(base);
    expect(registration).toMatchObject({
      receive_ephemeral: true,
      "org.matrix.msc3202": true,
      "io.element.msc4190": true,
    });
  });

  it("Matrix registration - the YAML reads back as the same registration", () => {
    const { registration, yaml } = generateRegistration({
      ...base,
      senderLocalpart: "bot",
      ghostPrefix: "gw.",
    });
    expect(parse(yaml)).toEqual(registration);
    expect(registration.sender_localpart).toBe("bot");
  });

  it("Matrix registration - the namespaces match ghosts of this server only", () => {
    const { registration } = generateRegistration({ ...base, ghostPrefix: "gw.x_" });
    const users = new RegExp(`^${registration.namespaces.users[0]?.regex ?? "$^"}`);
    const aliases = new RegExp(`^${registration.namespaces.aliases[0]?.regex ?? "$^"}`);
    expect(users.test("@gw.x_xmpp.weber:tchap.localhost")).toBe(true);
    expect(users.test("@gwyx_xmpp.weber:tchap.localhost")).toBe(false);
    expect(users.test("@gw.x_weber:tchapXlocalhost")).toBe(false);
    expect(users.test("@gw.x_weber:tchap.localhost.evil.example")).toBe(false);
    expect(users.test("@fedgate:tchap.localhost")).toBe(false);
    expect(aliases.test("#gw.x_lage:tchap.localhost")).toBe(true);
    expect(aliases.test("#lage:tchap.localhost")).toBe(false);
  });

  it("Matrix registration - escapes every regex metacharacter", () => {
    const text = "a.b*c+d?e^f$g{h}i(j)k|l[m]n\\o";
    expect(new RegExp(`^${escapeRegex(text)}$`).test(text)).toBe(true);
  });

  it("Matrix registration - refuses a bad url, server name, localpart or prefix", () => {
    for (const bad of [
      { url: "ftp://x" },
      { url: "not a url" },
      { serverName: "" },
      { serverName: "a b" },
      { id: " " },
      { senderLocalpart: "Bot" },
      { ghostPrefix: "a:b" },
      { senderLocalpart: "fedgate_bot" },
    ])
      expect(() => generateRegistration({ ...base, ...bad })).toThrow(PermanentError);
  });
});
