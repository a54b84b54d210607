import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeadLetter, Link } from "../../../schemas/types.js";
import { listenAdminApi } from "../../../gateway/core/admin/AdminApi.js";
import { BridgeStatuses } from "../../../gateway/core/admin/console/BridgeStatuses.js";
import { ConsoleFeed } from "../../../gateway/core/admin/console/ConsoleFeed.js";
import { consoleRouter } from "../../../gateway/core/admin/console/consoleRouter.js";
import { ConsoleSessions } from "../../../gateway/core/admin/console/ConsoleSessions.js";
import { MemoryBus } from "../../../gateway/platform/bus/MemoryBus.js";
import { MemoryKeyValue } from "../../../gateway/platform/bus/MemoryKeyValue.js";
import { encodeJson } from "../../../gateway/platform/bus/KeyValueStore.js";
import { JoinCodeStore } from "../../../gateway/platform/stores/JoinCodeStore.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { IdentityStore } from "../../../gateway/platform/stores/IdentityStore.js";
import type { HttpListener } from "../../../gateway/platform/http/HttpListener.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { PolicyEngine } from "../../../gateway/core/policy/PolicyEngine.js";
import { Router } from "../../../gateway/core/routing/Router.js";
import { DeliveryLedger } from "../../../gateway/core/routing/DeliveryLedger.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { ConnectionWatch } from "../../../bridges/kit/ConnectionWatch.js";
import { startAdapter } from "../../../bridges/kit/startAdapter.js";
import {
  eventually,
  examplePolicyFile,
  matrixRoom,
  message,
  stashcatChannel,
  xmppRoom,
} from "../../helpers/fixtures.js";

const operator = "operator-token-0c3e1a";
const bpolToken = "bpol-console-token-9d27f4";
const hostile = `<script>alert("x")</script>`;
/** A link whose description and conversation are someone's attempt at markup. */
const bpolLink: Link = {
  id: "bpol-ni",
  description: hostile,
  endpoints: [xmppRoom, { ...stashcatChannel, conversation: `channel:"><img src=x onerror=alert(1)>` }],
};
const otherLink: Link = {
  id: "ni-dinum",
  endpoints: [{ ...stashcatChannel, conversation: "channel:2" }, matrixRoom],
};

let bus: MemoryBus;
let links: LinkStore;
let feed: ConsoleFeed;
let server: HttpListener;
let router: Router;
const log = createLogger("silent");

beforeEach(async () => {
  bus = new MemoryBus();
  await bus.ensureTopology();
  links = new LinkStore(await bus.keyValue("links"));
  const identities = new IdentityStore(await bus.keyValue("identities"));
  await Promise.all([links.start(), identities.start()]);
  await links.create(bpolLink);
  await links.create(otherLink);
  const policy = await PolicyEngine.fromFile(examplePolicyFile);
  const ledger = new DeliveryLedger(await bus.keyValue("deliveries"));
  router = new Router({ bus, links, identities, ledger, policy: () => policy, log });
  feed = await ConsoleFeed.start(bus, log);
  const bridges = await BridgeStatuses.open(bus, log);
  server = await listenAdminApi(
    {
      links,
      joinCodes: new JoinCodeStore(new MemoryKeyValue(), log),
      checkAgency: (id) => policy.agency(id) !== undefined,
      token: operator,
      agencyTokens: { bpol: bpolToken },
      readiness: () => ({}),
      console: (tokens) =>
        consoleRouter({
          tokens,
          links,
          checkAgency: (id) => policy.agency(id) !== undefined,
          feed,
          bridges,
          log,
        }),
      log,
    },
    "127.0.0.1",
    0,
  );
});

afterEach(async () => {
  await feed.stop();
  links.stop();
  await server.close();
});

function get(path: string, cookie?: string): Promise<Response> {
  return fetch(server.url + path, { redirect: "manual", headers: cookie === undefined ? {} : { cookie } });
}

function post(
  path: string,
  form: Record<string, string>,
  cookie?: string,
  extra: Record<string, string> = {},
) {
  return fetch(server.url + path, {
    method: "POST",
    redirect: "manual",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...extra,
      ...(cookie === undefined ? {} : { cookie }),
    },
    body: new URLSearchParams(form).toString(),
  });
}

/** Logs in and returns the cookie and the session's form token. */
async function logIn(token: string): Promise<{ cookie: string; csrf: string }> {
  const response = await post("/console/login", { token });
  expect(response.status).toBe(303);
  const cookie = (response.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  const page = await (await get("/console/links", cookie)).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";
  expect(csrf).not.toBe("");
  return { cookie, csrf };
}

async function route(from: typeof xmppRoom, body: string): Promise<string> {
  const event = message(from, body);
  await router.handle({
    subject: subjects.inbound(from),
    data: encodeJson(event),
    headers: {},
    deliveryCount: 1,
    seq: 1,
  });
  return event.id;
}

describe("console", () => {
  it("console - pages need a session; a wrong token is refused; the cookie is HttpOnly, SameSite=Strict, Secure behind https", async () => {
    const anonymous = await get("/console/links");
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.get("location")).toBe("/console/login");
    expect((await post("/console/login", { token: "guess" })).status).toBe(401);
    const plain = await post("/console/login", { token: bpolToken });
    expect(plain.headers.get("set-cookie")).toMatch(
      /^fedgate_console=[\w-]{43}; Max-Age=28800; Path=\/console; Expires=[^;]+; HttpOnly; SameSite=Strict$/,
    );
    const proxied = await post("/console/login", { token: bpolToken }, undefined, {
      "x-forwarded-proto": "https",
    });
    expect(proxied.headers.get("set-cookie")).toMatch(/; Secure;/);
  });

  it("console - an agency admin sees only its links, every hostile value escaped, under a CSP without scripts", async () => {
    const { cookie } = await logIn(bpolToken);
    const response = await get("/console/links", cookie);
    expect(response.status).toBe(200);
    const csp = response.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    const page = await response.text();
    expect(page).toContain("bpol-ni");
    expect(page).not.toContain("ni-dinum");
    expect(page).not.toContain("<script");
    expect(page).not.toContain("<img");
    expect(page).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
    expect(page).toContain("operator-approved");
    expect((await get("/console/links", cookie)).status).toBe(200);
  });

  it("console - a form without the session's token changes nothing; with it, the link is paused and its messages denied as link-paused", async () => {
    const { cookie, csrf } = await logIn(bpolToken);
    expect((await post("/console/links/bpol-ni/state", { state: "paused" }, cookie)).status).toBe(403);
    expect((await post("/console/links/bpol-ni/state", { state: "paused", csrf: "x" }, cookie)).status).toBe(
      403,
    );
    expect(links.get("bpol-ni")?.state).toBeUndefined();
    // Another agency's link is not found, as in /v1.
    expect((await post("/console/links/ni-dinum/state", { state: "paused", csrf }, cookie)).status).toBe(404);
    expect((await post("/console/links/bpol-ni/state", { state: "paused", csrf }, cookie)).status).toBe(303);
    expect(links.get("bpol-ni")?.state).toBe("paused");
    const eventId = await route(xmppRoom, "secret body text");
    const linksPage = await (await get("/console/links", cookie)).text();
    expect(linksPage).toContain("health-paused");
    const decisions = await (await get("/console/decisions", cookie)).text();
    expect(decisions).toContain(eventId);
    expect(decisions).toContain("link-paused");
    expect(decisions).not.toContain("secret body text");
  });

  it("console - each endpoint shows its bridge's connection, stalls and reconnects as the bridge reports them, and its deliveries' lag; a bridge that does not report shows so", async () => {
    // The XMPP side's bridge: a real watch whose server stops answering once, and whose deliveries hang.
    let answering = true;
    const watch = new ConnectionWatch(
      {
        ping: () => (answering ? Promise.resolve() : Promise.reject(new Error("no pong"))),
        reconnect: () => Promise.resolve(),
      },
      { ...xmppRoom, log, check: { intervalMs: 50, timeoutMs: 50 } },
    );
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const bridge = await startAdapter(
      bus,
      {
        network: xmppRoom.network,
        instance: xmppRoom.instance,
        open: () =>
          Promise.resolve({
            deliver: async () => {
              await held;
              return undefined;
            },
            close: () => Promise.resolve(),
            connection: watch,
          }),
      },
      log,
    );
    try {
      answering = false;
      await eventually(() => (watch.record.stalls > 0 ? true : undefined), 5000, "a stall");
      answering = true;
      watch.disconnectedNow();
      watch.connectedNow();
      await eventually(() => (watch.ready ? true : undefined), 5000, "answering again");
      // Three messages for the XMPP room: the first is in hand (and hangs), two wait.
      for (const body of ["one", "two", "three"]) await route(bpolLink.endpoints[1], body);
      await eventually(
        async () =>
          (await bus.consumerLag("FEDGATE_OUTBOUND", "fedgate-adapter-xmpp-bpol"))?.ackPending === 1
            ? true
            : undefined,
        5000,
        "the first delivery in hand",
      );
      const { cookie } = await logIn(bpolToken);
      const page = await (await get("/console/links", cookie)).text();
      const endpoint = (instance: string): string =>
        new RegExp(`data-instance="${instance}">([\\s\\S]*?)</div>\\s*</div>`).exec(page)?.[1] ?? "";
      const xmpp = endpoint("xmpp.bpol").replace(/\s+/g, " ");
      expect(xmpp).toContain('class="bridge-state bridge-connected">connected<');
      expect(xmpp).toMatch(/>, 1 stall, 1 reconnect since \d{4}-/);
      expect(xmpp).toContain("deliveries: 2 pending, 1 unacknowledged");
      const stashcat = endpoint("stashcat.ni").replace(/\s+/g, " ");
      expect(stashcat).toContain("bridge-not-reporting");
      expect(stashcat).toContain("deliveries: none consumed yet");
      expect(page).not.toContain("not measured");
    } finally {
      release();
      await bridge.stop();
    }
  });

  it("console - an agency admin creates a link it is on and revokes it, but not one it is not on", async () => {
    const { cookie, csrf } = await logIn(bpolToken);
    const side = (n: number, e: typeof xmppRoom, conversation: string) => ({
      [`network${n}`]: e.network,
      [`instance${n}`]: e.instance,
      [`conversation${n}`]: conversation,
      [`agency${n}`]: e.agency,
    });
    const foreign = {
      csrf,
      id: "foreign",
      ...side(1, stashcatChannel, "channel:9"),
      ...side(2, matrixRoom, "!9:t"),
    };
    expect((await post("/console/links", foreign, cookie)).status).toBe(403);
    const own = { csrf, id: "own", ...side(1, xmppRoom, "own@conf"), ...side(2, matrixRoom, "!own:t") };
    expect((await post("/console/links", own, cookie)).status).toBe(303);
    expect(links.get("own")).toBeDefined();
    expect((await post("/console/links/own/revoke", { csrf }, cookie)).status).toBe(303);
    expect(links.get("own")).toBeUndefined();
  });

  it("console - dead letters show where and why, never the message; retry publishes it again where it was read", async () => {
    const event = message(xmppRoom, "dead body text");
    const letter: DeadLetter = {
      specVersion: "1",
      origin: "core",
      subject: subjects.inbound(xmppRoom),
      reason: { code: "FG_STORE_FAILED", message: "the store was down" },
      payload: JSON.stringify(event),
      payloadEncoding: "utf8",
      failedAt: new Date().toISOString(),
    };
    await bus.publish(subjects.deadLetter("core"), encodeJson(letter));
    const { cookie, csrf } = await logIn(bpolToken);
    const page = await (await get("/console/dead-letters", cookie)).text();
    expect(page).toContain("FG_STORE_FAILED");
    expect(page).not.toContain("dead body text");
    const seq = /dead-letters\/(\d+)\/retry/.exec(page)?.[1] ?? "";
    const before = bus.messages(subjects.inboundAll).length;
    expect((await post(`/console/dead-letters/${seq}/retry`, { csrf }, cookie)).status).toBe(303);
    const inbound = bus.messages(subjects.inboundAll);
    expect(inbound).toHaveLength(before + 1);
    expect(Buffer.from(inbound.at(-1)?.data ?? []).toString()).toBe(letter.payload);
    expect(await (await get("/console/dead-letters", cookie)).text()).toMatch(/retried /);
    expect((await post(`/console/dead-letters/${seq}/retry`, { csrf }, cookie)).status).toBe(400);
    expect(bus.messages(subjects.inboundAll)).toHaveLength(before + 1);
  });

  it("console - a form from another site is refused, the log-in form too", async () => {
    const foreign = { origin: "https://evil.example" };
    expect((await post("/console/login", { token: bpolToken }, undefined, foreign)).status).toBe(403);
    const { cookie, csrf } = await logIn(bpolToken);
    expect(
      (await post("/console/links/bpol-ni/state", { state: "paused", csrf }, cookie, foreign)).status,
    ).toBe(403);
    expect(links.get("bpol-ni")?.state).toBeUndefined();
    const own = { origin: server.url };
    expect((await post("/console/links/bpol-ni/state", { state: "paused", csrf }, cookie, own)).status).toBe(
      303,
    );
  });

  it("console - log-out ends the session", async () => {
    const { cookie, csrf } = await logIn(operator);
    expect((await post("/console/logout", { csrf }, cookie)).status).toBe(303);
    expect((await get("/console/links", cookie)).status).toBe(303);
  });

  it("console - the session table is bounded and sessions end", () => {
    let now = 0;
    const sessions = new ConsoleSessions(1000, 2, () => now);
    const first = sessions.create({});
    const second = sessions.create({ agency: "bpol" });
    sessions.create({});
    expect(sessions.size).toBe(2);
    expect(sessions.get(first.id)).toBeUndefined();
    expect(sessions.get(second.id)?.scope).toEqual({ agency: "bpol" });
    now = 1000;
    expect(sessions.get(second.id)).toBeUndefined();
  });
});
