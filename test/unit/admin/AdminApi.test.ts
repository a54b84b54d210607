import type { HttpListener } from "../../../gateway/platform/http/HttpListener.js";
import { generateKeyPairSync } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { pino } from "pino";
import type { Link } from "../../../schemas/types.js";
import { listenAdminApi, type AdminApiDeps } from "../../../gateway/core/admin/AdminApi.js";
import { problemType, toProblem, type ProblemDocument } from "../../../gateway/core/admin/problem.js";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { PermanentError, TransientError, ValidationError } from "../../../schemas/contract/errors.js";
import { directLink } from "../../../schemas/contract/directConversations.js";
import { JoinCodeStore, type IssuedJoinCode } from "../../../gateway/platform/stores/JoinCodeStore.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { PartnerManifestStore } from "../../../gateway/core/federation/PartnerManifestStore.js";
import { signManifest } from "../../../gateway/core/federation/partnerManifest.js";

const token = "s3cret-admin-token-7f3a9c";
const wrongToken = "not-the-token-b81e44";
const knownAgencies = new Set(["de-bpol", "fr-pn"]);
/** The issuing authority the gateway trusts for partner manifests. */
const authority = generateKeyPairSync("ed25519");

/** A bucket whose next create() fails, to reach the transient and internal error paths. */
class FlakyKeyValue extends MemoryKeyValue {
  failNext: Error | undefined;

  override create(key: string, value: Uint8Array): Promise<number> {
    const failure = this.failNext;
    this.failNext = undefined;
    return failure === undefined ? super.create(key, value) : Promise.reject(failure);
  }
}

interface Harness {
  server: HttpListener;
  kv: FlakyKeyValue;
  store: LinkStore;
  codes: JoinCodeStore;
  logs: string[];
  checks: Record<string, boolean>;
  /** fetch against the server; sends the right bearer token unless `auth` says otherwise. */
  call: (path: string, init?: RequestInit & { auth?: string | null }) => Promise<globalThis.Response>;
}

function aLink(id = "bpol-pn", overrides: Partial<Link> = {}): Link {
  return {
    id,
    endpoints: [
      { network: "xmpp", instance: "bpol", conversation: `${id}@muc.bpol.example`, agency: "de-bpol" },
      { network: "matrix", instance: "tchap", conversation: `!${id}:tchap.example`, agency: "fr-pn" },
    ],
    ...overrides,
  };
}

function postLink(h: Harness, body: unknown): Promise<globalThis.Response> {
  return h.call("/v1/links", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function problemOf(response: globalThis.Response): Promise<ProblemDocument> {
  expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  return (await response.json()) as ProblemDocument;
}

async function start(): Promise<Harness> {
  const logs: string[] = [];
  const log = pino({ level: "debug" }, { write: (chunk: string) => void logs.push(chunk) });
  const kv = new FlakyKeyValue();
  const store = new LinkStore(kv);
  await store.start();
  const checks: Record<string, boolean> = { nats: true, streams: true, links: true };
  const codes = new JoinCodeStore(new MemoryKeyValue(), log);
  const deps: AdminApiDeps = {
    links: store,
    joinCodes: codes,
    checkAgency: (id) => knownAgencies.has(id),
    token,
    readiness: () => ({ ...checks }),
    partners: new PartnerManifestStore(new MemoryKeyValue(), { authorities: [authority.publicKey] }),
    log,
  };
  const server = await listenAdminApi(deps, "127.0.0.1", 0);
  const call: Harness["call"] = (path, init = {}) => {
    const { auth = `Bearer ${token}`, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (auth !== null) headers.set("authorization", auth);
    return fetch(server.url + path, { ...rest, headers });
  };
  return { server, kv, store, codes, logs, checks, call };
}

let h: Harness;

beforeEach(async () => {
  h = await start();
});

afterEach(async () => {
  // Whatever a test sent, the server must still be alive.
  const health = await h.call("/healthz", { auth: null });
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: "ok" });
  h.store.stop();
  await h.server.close();
});

describe("AdminApi - probes", () => {
  it("AdminApi - /healthz answers ok without a token and without x-powered-by", async () => {
    const response = await h.call("/healthz", { auth: null });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-powered-by")).toBeNull();
    expect(await response.json()).toEqual({ status: "ok" });
  });

  it("AdminApi - /readyz is 200 when every check passes", async () => {
    const response = await h.call("/readyz", { auth: null });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: "ready",
      checks: { nats: true, streams: true, links: true },
    });
  });

  it("AdminApi - /readyz is 503 naming the failed check when one is false", async () => {
    h.checks["nats"] = false;
    const response = await h.call("/readyz", { auth: null });
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      status: "not-ready",
      checks: { nats: false, streams: true, links: true },
    });
  });
});

describe("AdminApi - links", () => {
  it("AdminApi - a link is created, listed, read and deleted", async () => {
    const created = await postLink(h, aLink("bpol-pn", { description: "border liaison" }));
    expect(created.status).toBe(201);
    expect(created.headers.get("location")).toBe("/v1/links/bpol-pn");
    const stored = (await created.json()) as Link;
    expect(stored.id).toBe("bpol-pn");
    expect(stored.description).toBe("border liaison");
    expect(typeof stored.createdAt).toBe("string");

    await postLink(h, aLink("aaa-first"));
    const list = await h.call("/v1/links");
    expect(list.status).toBe(200);
    const { links } = (await list.json()) as { links: Link[] };
    expect(links.map((l) => l.id)).toEqual(["aaa-first", "bpol-pn"]);

    const got = await h.call("/v1/links/bpol-pn");
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(stored);

    const deleted = await h.call("/v1/links/bpol-pn", { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe("");
    expect(h.store.get("bpol-pn")).toBeUndefined();

    const gone = await h.call("/v1/links/bpol-pn");
    expect(gone.status).toBe(404);
    expect((await problemOf(gone)).code).toBe("FG_LINK_NOT_FOUND");
  });

  it("AdminApi - a deleted link's conversations can be linked again", async () => {
    expect((await postLink(h, aLink("first"))).status).toBe(201);
    expect((await h.call("/v1/links/first", { method: "DELETE" })).status).toBe(204);
    expect((await postLink(h, { ...aLink("first"), id: "second" })).status).toBe(201);
  });
});

describe("AdminApi - join codes", () => {
  function postCode(id: string, body: unknown): Promise<globalThis.Response> {
    return h.call(`/v1/links/${id}/join-codes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  }
  const request = { network: "matrix", instance: "tchap", agency: "fr-pn" };

  it("AdminApi - a join code is issued for a link and an endpoint, returned once, and never logged", async () => {
    await postLink(h, aLink("bpol-pn"));
    const room = "!neu:tchap.example";
    const response = await postCode("bpol-pn", { ...request, conversation: room });
    expect(response.status).toBe(201);
    const issued = (await response.json()) as IssuedJoinCode;
    expect(issued).toMatchObject({ linkId: "bpol-pn", ...request, conversation: room });
    expect(issued.code).toMatch(/^fgj_/);
    // An hour unless the request says otherwise.
    expect(Date.parse(issued.expiresAt) - Date.parse(issued.issuedAt)).toBe(3_600_000);
    const where = { network: "matrix", instance: "tchap", conversation: room };
    expect(await h.codes.redeem(issued.code, where, (grant) => Promise.resolve(grant))).toMatchObject({
      linkId: "bpol-pn",
      agency: "fr-pn",
    });
    const short = (await (
      await postCode("bpol-pn", { ...request, ttlSeconds: 120 })
    ).json()) as IssuedJoinCode;
    expect(Date.parse(short.expiresAt) - Date.parse(short.issuedAt)).toBe(120_000);
    await vi.waitFor(() => expect(h.logs.some((l) => l.includes("join code issued"))).toBe(true));
    const issuedLine = h.logs.find((l) => l.includes("join code issued")) ?? "";
    expect(issuedLine).toContain(issued.codeId);
    const all = h.logs.join("");
    for (const code of [issued.code, short.code]) expect(all).not.toContain(code);
  });

  it("AdminApi - join codes are refused for unknown links, bad requests, undeclared agencies and direct chats", async () => {
    const missing = await postCode("nope", request);
    expect(missing.status).toBe(404);
    expect((await problemOf(missing)).code).toBe("FG_LINK_NOT_FOUND");

    await postLink(h, aLink("bpol-pn"));
    const tooLong = await postCode("bpol-pn", { ...request, ttlSeconds: 86_401 });
    expect(tooLong.status).toBe(400);
    expect(await problemOf(tooLong)).toMatchObject({
      code: "FG_REQUEST_INVALID",
      errors: [{ pointer: "/ttlSeconds" }],
    });
    const unknownField = await postCode("bpol-pn", { ...request, linkId: "other" });
    expect(unknownField.status).toBe(400);
    const notJson = await postCode("bpol-pn", "{");
    expect(notJson.status).toBe(400);
    expect((await problemOf(notJson)).code).toBe("FG_REQUEST_INVALID");

    const agency = await postCode("bpol-pn", { ...request, agency: "xx-ghost" });
    expect(agency.status).toBe(422);
    expect(await problemOf(agency)).toMatchObject({
      code: "FG_AGENCY_UNKNOWN",
      errors: [{ pointer: "/agency" }],
    });

    const linked = await postCode("bpol-pn", { ...request, conversation: "!bpol-pn:tchap.example" });
    expect(linked.status).toBe(409);
    expect((await problemOf(linked)).code).toBe("FG_LINK_CONFLICT");

    const dm = directLink(
      { network: "matrix", instance: "tchap", userId: "@claire:tchap.example" },
      "fr-pn",
      { network: "xmpp", instance: "bpol", userId: "weber@bpol.example" },
      "de-bpol",
    );
    expect((await postLink(h, dm)).status).toBe(201);
    const direct = await postCode(dm.id, request);
    expect(direct.status).toBe(409);
    expect(await problemOf(direct)).toMatchObject({ code: "FG_LINK_CONFLICT" });
  });
});

describe("AdminApi - auth", () => {
  it("AdminApi - a request without a token is 401 FG_AUTH_REQUIRED with WWW-Authenticate: Bearer", async () => {
    const response = await h.call("/v1/links", { auth: null });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe("Bearer");
    const problem = await problemOf(response);
    expect(problem).toMatchObject({
      type: "https://fedgate.eu/problems/fg-auth-required",
      status: 401,
      code: "FG_AUTH_REQUIRED",
      instance: "/v1/links",
    });
  });

  it("AdminApi - another auth scheme counts as no token", async () => {
    const response = await h.call("/v1/links", {
      auth: `Basic ${Buffer.from(`admin:${token}`).toString("base64")}`,
    });
    expect(response.status).toBe(401);
    expect((await problemOf(response)).code).toBe("FG_AUTH_REQUIRED");
  });

  it("AdminApi - a wrong or empty token is 401 FG_AUTH_INVALID and changes nothing", async () => {
    for (const auth of [`Bearer ${wrongToken}`, "Bearer", `Bearer ${token}x`]) {
      const response = await h.call("/v1/links", {
        auth,
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(aLink()),
      });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect((await problemOf(response)).code).toBe("FG_AUTH_INVALID");
    }
    expect(h.store.list()).toEqual([]);
  });

  it("AdminApi - unknown /v1 routes need the token too, so they cannot be probed", async () => {
    expect((await h.call("/v1/secrets", { auth: null })).status).toBe(401);
    expect((await h.call("/v1/secrets")).status).toBe(404);
  });

  it("AdminApi - refusals are logged at warn with address, method and path, never with the token", async () => {
    await h.call("/v1/links", { auth: null });
    await h.call("/v1/links?token=x", { auth: `Bearer ${wrongToken}` });
    await h.call("/v1/links");
    const entries = h.logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    // The per-request line is written when the response closes, which may trail the client by a tick.
    await vi.waitFor(() =>
      expect(h.logs.filter((line) => line.includes('"msg":"admin API request"'))).toHaveLength(3),
    );
    const refusals = entries.filter((e) => e["msg"] === "admin API request refused");
    expect(refusals).toHaveLength(2);
    for (const refusal of refusals) {
      expect(refusal["level"]).toBe(40);
      expect(refusal).toMatchObject({ method: "GET", path: "/v1/links", remoteAddress: "127.0.0.1" });
    }
    expect(refusals.map((r) => r["code"])).toEqual(["FG_AUTH_REQUIRED", "FG_AUTH_INVALID"]);
    // No line, the per-request debug lines included, carries a token or the header.
    expect(h.logs.filter((line) => line.includes('"level":20'))).toHaveLength(3);
    const all = h.logs.join("");
    expect(all).not.toContain(token);
    expect(all).not.toContain(wrongToken);
    expect(all.toLowerCase()).not.toContain("authorization");
  });
});

describe("AdminApi - problems", () => {
  it("AdminApi - malformed JSON is 400 FG_LINK_INVALID saying the body is not valid JSON", async () => {
    const response = await h.call("/v1/links", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"id": "x", "endpoints": [',
    });
    expect(response.status).toBe(400);
    const problem = await problemOf(response);
    expect(problem).toMatchObject({ status: 400, code: "FG_LINK_INVALID", instance: "/v1/links" });
    expect(problem.detail).toMatch(/not valid JSON/);
  });

  it("AdminApi - a schema-invalid link is 400 with a pointer per problem", async () => {
    const bad = aLink();
    const response = await postLink(h, {
      ...bad,
      endpoints: [bad.endpoints[0], { ...bad.endpoints[1], network: "Matrix!" }],
    });
    expect(response.status).toBe(400);
    const problem = await problemOf(response);
    expect(problem.code).toBe("FG_LINK_INVALID");
    expect(problem.type).toBe("https://fedgate.eu/problems/fg-link-invalid");
    expect(problem.errors?.[0]?.pointer).toBe("/endpoints/1/network");
  });

  it("AdminApi - a JSON value that is not a link object is 400", async () => {
    const response = await postLink(h, [1, 2]);
    expect(response.status).toBe(400);
    expect((await problemOf(response)).errors?.[0]?.pointer).toBe("");
  });

  it("AdminApi - a duplicate id is 409 FG_LINK_CONFLICT", async () => {
    expect((await postLink(h, aLink("dup"))).status).toBe(201);
    const response = await postLink(h, { ...aLink("other"), id: "dup" });
    expect(response.status).toBe(409);
    const problem = await problemOf(response);
    expect(problem.code).toBe("FG_LINK_CONFLICT");
    expect(problem.detail).toMatch(/dup exists already/);
  });

  it("AdminApi - a conversation claimed by another link is 409 FG_LINK_CONFLICT", async () => {
    const first = aLink("first");
    expect((await postLink(h, first)).status).toBe(201);
    const response = await postLink(
      h,
      aLink("second", { endpoints: [first.endpoints[1], aLink("x").endpoints[0]] }),
    );
    expect(response.status).toBe(409);
    const problem = await problemOf(response);
    expect(problem.code).toBe("FG_LINK_CONFLICT");
    expect(problem.detail).toMatch(/belongs to another link/);
    expect(h.store.get("second")).toBeUndefined();
  });

  it("AdminApi - an unknown id is 404 FG_LINK_NOT_FOUND for GET and DELETE, whatever its shape", async () => {
    for (const path of ["/v1/links/nope", "/v1/links/NOT.A.KEY", "/v1/links/a%2Fb"]) {
      const got = await h.call(path);
      expect(got.status).toBe(404);
      expect((await problemOf(got)).code).toBe("FG_LINK_NOT_FOUND");
      const deleted = await h.call(path, { method: "DELETE" });
      expect(deleted.status).toBe(404);
      expect((await problemOf(deleted)).code).toBe("FG_LINK_NOT_FOUND");
    }
  });

  it("AdminApi - a link naming an undeclared agency is 422 FG_AGENCY_UNKNOWN with its pointer", async () => {
    const link = aLink();
    const response = await postLink(h, {
      ...link,
      endpoints: [link.endpoints[0], { ...link.endpoints[1], agency: "xx-ghost" }],
    });
    expect(response.status).toBe(422);
    const problem = await problemOf(response);
    expect(problem.code).toBe("FG_AGENCY_UNKNOWN");
    expect(problem.detail).toContain("xx-ghost");
    expect(problem.errors).toEqual([
      { pointer: "/endpoints/1/agency", message: 'agency "xx-ghost" is not declared in the policy' },
    ]);
    expect(h.store.list()).toEqual([]);
  });

  it("AdminApi - a body over 64 KiB is 413", async () => {
    const response = await postLink(h, aLink("big", { description: "x".repeat(70 * 1024) }));
    expect(response.status).toBe(413);
    expect((await problemOf(response)).code).toBe("FG_BODY_TOO_LARGE");
  });

  it("AdminApi - a body that is not application/json is 415", async () => {
    const json = JSON.stringify(aLink());
    // A string body is sent as text/plain; bytes are sent without any Content-Type.
    for (const body of [json, new TextEncoder().encode(json)]) {
      const response = await h.call("/v1/links", { method: "POST", body });
      expect(response.status).toBe(415);
      expect(response.headers.get("accept-post")).toBe("application/json");
      expect((await problemOf(response)).code).toBe("FG_MEDIA_TYPE_UNSUPPORTED");
    }
    expect(h.store.list()).toEqual([]);
  });

  it("AdminApi - an unknown route is a 404 problem", async () => {
    const response = await h.call("/nowhere", { auth: null });
    expect(response.status).toBe(404);
    expect(await problemOf(response)).toMatchObject({ code: "FG_ROUTE_NOT_FOUND", instance: "/nowhere" });
    expect((await h.call("/v1/links", { method: "PUT" })).status).toBe(404);
  });

  it("AdminApi - an undecodable path parameter is 400", async () => {
    const response = await h.call("/v1/links/%E0%A4%A");
    expect(response.status).toBe(400);
    expect((await problemOf(response)).code).toBe("FG_REQUEST_INVALID");
  });

  it("AdminApi - a transient store failure is 503 with Retry-After: 5", async () => {
    h.kv.failNext = new TransientError("FG_STORE_FAILED", "bucket briefly unreachable");
    const response = await postLink(h, aLink());
    expect(response.status).toBe(503);
    expect(response.headers.get("retry-after")).toBe("5");
    expect((await problemOf(response)).code).toBe("FG_STORE_FAILED");
    expect((await postLink(h, aLink())).status).toBe(201);
  });

  it("AdminApi - an unexpected error is 500 with a generic detail, logged but not leaked", async () => {
    h.kv.failNext = new Error("disk at /var/lib/nats is on fire");
    const response = await postLink(h, aLink());
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).not.toContain("on fire");
    expect(text).not.toContain("stack");
    const problem = JSON.parse(text) as ProblemDocument;
    expect(problem).toMatchObject({
      status: 500,
      code: "FG_INTERNAL",
      type: "https://fedgate.eu/problems/fg-internal",
    });
    const logged = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e["level"] === 50);
    expect(JSON.stringify(logged)).toContain("on fire");
  });
});

describe("AdminApi - server", () => {
  function depsOf(overrides: Partial<AdminApiDeps>): AdminApiDeps {
    return {
      links: h.store,
      joinCodes: h.codes,
      checkAgency: () => true,
      token,
      readiness: () => ({}),
      log: pino({ level: "silent" }),
      ...overrides,
    };
  }

  it("AdminApi - an empty token is refused at start-up", async () => {
    await expect(listenAdminApi(depsOf({ token: "" }), "127.0.0.1", 0)).rejects.toMatchObject({
      code: "FG_CONFIG_INVALID",
    });
  });

  it("AdminApi - a port in use rejects with FG_SERVER_START_FAILED", async () => {
    const port = Number(new URL(h.server.url).port);
    await expect(listenAdminApi(depsOf({}), "127.0.0.1", port)).rejects.toMatchObject({
      code: "FG_SERVER_START_FAILED",
    });
  });
});

describe("AdminApi - problem mapping", () => {
  it("AdminApi - problem types are the code in lower case with dashes", () => {
    expect(problemType("FG_LINK_CONFLICT")).toBe("https://fedgate.eu/problems/fg-link-conflict");
  });

  it("AdminApi - a permanent error without a client status is a generic 500", () => {
    const { problem } = toProblem(
      new PermanentError("FG_CONFIG_INVALID", "config at /etc/x broken"),
      "/v1/x",
    );
    expect(problem).toMatchObject({ status: 500, code: "FG_INTERNAL", instance: "/v1/x" });
    expect(problem.detail).not.toContain("/etc/x");
  });

  it("AdminApi - a validation error carries its problems as errors", () => {
    const error = new ValidationError("FG_EVENT_INVALID", "event", [
      { pointer: "/id", message: "must be string" },
    ]);
    const { problem } = toProblem(error, "/v1/x");
    expect(problem.status).toBe(400);
    expect(problem.errors).toEqual([{ pointer: "/id", message: "must be string" }]);
  });

  it("AdminApi - thrown non-errors are a generic 500", () => {
    expect(toProblem("boom", "/").problem).toMatchObject({ status: 500, code: "FG_INTERNAL" });
    expect(toProblem(null, "/").problem.status).toBe(500);
  });
});

describe("AdminApi - partner manifests", () => {
  const manifest = (version: number, gateway = "fr") => ({
    version,
    gateway: { id: gateway, country: "FR", name: "Passerelle du ministère de l'Intérieur" },
    issuedAt: new Date(Date.now() - 3_600_000).toISOString(),
    expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
    agencies: [{ id: "fr-pn", name: "Police nationale", country: "FR" }],
    endpoints: { leafnode: "tls://fedgate.interieur.example:7422" },
    pins: { tlsPublicKeySha256: ["c".repeat(64)] },
  });
  const put = (id: string, body: unknown, auth?: string | null) =>
    h.call(`/v1/partners/${id}/manifest`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      ...(auth === undefined ? {} : { auth }),
    });

  it("AdminApi - a partner's signed manifest is accepted, then served; a replayed older one is refused", async () => {
    expect((await put("fr", signManifest(manifest(2), authority.privateKey))).status).toBe(200);
    const held = await h.call("/v1/partners/fr");
    expect(held.status).toBe(200);
    expect(((await held.json()) as { version: number }).version).toBe(2);
    const stale = await put("fr", signManifest(manifest(1), authority.privateKey));
    expect(stale.status).toBe(409);
    expect((await problemOf(stale)).code).toBe("FG_MANIFEST_STALE");
  });

  it("AdminApi - a tampered manifest, one for another gateway, or an unknown partner: problems with their codes", async () => {
    const signed = signManifest(manifest(1), authority.privateKey);
    const tampered = { ...signed, manifest: { ...signed.manifest, version: 5 } };
    const refused = await put("fr", tampered);
    expect(refused.status).toBe(422);
    expect((await problemOf(refused)).code).toBe("FG_MANIFEST_TAMPERED");
    const elsewhere = await put("nl", signed);
    expect(elsewhere.status).toBe(422);
    expect((await problemOf(elsewhere)).code).toBe("FG_MANIFEST_INVALID");
    const unknown = await h.call("/v1/partners/fr");
    expect(unknown.status).toBe(404);
    expect((await problemOf(unknown)).code).toBe("FG_PARTNER_NOT_FOUND");
    expect((await put("fr", signed, null)).status).toBe(401);
  });
});
