import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { Link } from "../../../schemas/types.js";
import { listenAdminApi } from "../../../gateway/core/admin/AdminApi.js";
import type { ProblemDocument } from "../../../gateway/core/admin/problem.js";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { JoinCodeStore } from "../../../gateway/platform/stores/JoinCodeStore.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import type { HttpListener } from "../../../gateway/platform/http/HttpListener.js";
import { AdminTokens } from "../../../gateway/core/admin/adminScope.js";

const operator = "operator-token-5d1c0e";
const bpolToken = "bpol-admin-token-88a2f1";
const pnToken = "pn-admin-token-3e9b7c";
const agencies = new Set(["de-bpol", "fr-pn", "nl-kmar"]);

function link(id: string, a: string, b: string): Link {
  return {
    id,
    endpoints: [
      { network: "xmpp", instance: "x", conversation: `${id}@muc.example`, agency: a },
      { network: "matrix", instance: "m", conversation: `!${id}:m.example`, agency: b },
    ],
  };
}

let server: HttpListener;
let store: LinkStore;

function call(token: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  if (init.body !== undefined) headers.set("content-type", "application/json");
  return fetch(server.url + path, { ...init, headers });
}

async function problem(response: Response, status: number, code: string): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  expect(((await response.json()) as ProblemDocument).code).toBe(code);
}

beforeEach(async () => {
  const log = pino({ level: "silent" });
  store = new LinkStore(new MemoryKeyValue());
  await store.start();
  await store.create(link("bpol-pn", "de-bpol", "fr-pn"));
  await store.create(link("pn-kmar", "fr-pn", "nl-kmar"));
  server = await listenAdminApi(
    {
      links: store,
      joinCodes: new JoinCodeStore(new MemoryKeyValue(), log),
      checkAgency: (id) => agencies.has(id),
      token: operator,
      agencyTokens: { "de-bpol": bpolToken, "fr-pn": pnToken },
      readiness: () => ({}),
      log,
    },
    "127.0.0.1",
    0,
  );
});

afterEach(async () => {
  store.stop();
  await server.close();
});

describe("agency tokens", () => {
  it("an agency token lists only the links its agency is on; the operator's lists all", async () => {
    const ids = async (token: string): Promise<string[]> =>
      ((await (await call(token, "/v1/links")).json()) as { links: Link[] }).links.map((l) => l.id);
    expect(await ids(operator)).toEqual(["bpol-pn", "pn-kmar"]);
    expect(await ids(bpolToken)).toEqual(["bpol-pn"]);
    expect(await ids(pnToken)).toEqual(["bpol-pn", "pn-kmar"]);
  });

  it("another agency's link is not found, for reading, pausing, deleting and join codes alike", async () => {
    expect((await call(bpolToken, "/v1/links/bpol-pn")).status).toBe(200);
    await problem(await call(bpolToken, "/v1/links/pn-kmar"), 404, "FG_LINK_NOT_FOUND");
    // The same answer as for a link that does not exist at all.
    await problem(await call(bpolToken, "/v1/links/no-such"), 404, "FG_LINK_NOT_FOUND");
    await problem(
      await call(bpolToken, "/v1/links/pn-kmar/state", { method: "PUT", body: '{"state":"paused"}' }),
      404,
      "FG_LINK_NOT_FOUND",
    );
    await problem(await call(bpolToken, "/v1/links/pn-kmar", { method: "DELETE" }), 404, "FG_LINK_NOT_FOUND");
    expect(store.get("pn-kmar")).toBeDefined();
    await problem(
      await call(bpolToken, "/v1/links/pn-kmar/join-codes", {
        method: "POST",
        body: JSON.stringify({ network: "xmpp", instance: "x", agency: "de-bpol" }),
      }),
      404,
      "FG_LINK_NOT_FOUND",
    );
  });

  it("an agency admin deletes its own link", async () => {
    expect((await call(bpolToken, "/v1/links/bpol-pn", { method: "DELETE" })).status).toBe(204);
    expect(store.get("bpol-pn")).toBeUndefined();
  });

  it("an agency admin cannot create a link its agency is not on, but can one it is on", async () => {
    const foreign = link("kmar-pn2", "nl-kmar", "fr-pn");
    await problem(
      await call(bpolToken, "/v1/links", { method: "POST", body: JSON.stringify(foreign) }),
      403,
      "FG_FORBIDDEN",
    );
    expect(store.get("kmar-pn2")).toBeUndefined();
    const own = link("bpol-kmar", "de-bpol", "nl-kmar");
    expect((await call(bpolToken, "/v1/links", { method: "POST", body: JSON.stringify(own) })).status).toBe(
      201,
    );
  });

  it("an agency admin issues join codes only for its own agency's rooms", async () => {
    const body = (agency: string): string => JSON.stringify({ network: "xmpp", instance: "x", agency });
    await problem(
      await call(bpolToken, "/v1/links/bpol-pn/join-codes", { method: "POST", body: body("fr-pn") }),
      403,
      "FG_FORBIDDEN",
    );
    const issued = await call(bpolToken, "/v1/links/bpol-pn/join-codes", {
      method: "POST",
      body: body("de-bpol"),
    });
    expect(issued.status).toBe(201);
  });

  it("partner gateways and consents are the operator's alone", async () => {
    await problem(await call(bpolToken, "/v1/consents"), 403, "FG_FORBIDDEN");
    await problem(await call(bpolToken, "/v1/partners/x"), 403, "FG_FORBIDDEN");
  });

  it("a link is paused and made active again", async () => {
    const paused = await call(pnToken, "/v1/links/bpol-pn/state", {
      method: "PUT",
      body: '{"state":"paused"}',
    });
    expect(paused.status).toBe(200);
    expect(((await paused.json()) as Link).state).toBe("paused");
    expect(store.get("bpol-pn")?.state).toBe("paused");
    await problem(
      await call(pnToken, "/v1/links/bpol-pn/state", { method: "PUT", body: '{"state":"gone"}' }),
      400,
      "FG_REQUEST_INVALID",
    );
    const active = await call(operator, "/v1/links/bpol-pn/state", {
      method: "PUT",
      body: '{"state":"active"}',
    });
    expect(((await active.json()) as Link).state).toBe("active");
  });

  it("tokens must be non-empty and distinct", () => {
    expect(() => new AdminTokens(operator, { "de-bpol": "" })).toThrow(/de-bpol must not be empty/);
    expect(() => new AdminTokens(operator, { "de-bpol": operator })).toThrow(/the same/);
    const tokens = new AdminTokens(operator, { "de-bpol": bpolToken });
    expect(tokens.scopeOf(bpolToken)).toEqual({ agency: "de-bpol" });
    expect(tokens.scopeOf(operator)).toEqual({});
    expect(tokens.scopeOf("guess")).toBeUndefined();
  });
});
