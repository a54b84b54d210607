/**
 * The console for agency admins, under /console on the admin port: log in with an admin token (the
 * operator's or an agency's, see adminScope.ts), then see and change the links the token's scope covers,
 * recent decisions and dead letters. Sessions are cookies (HttpOnly, SameSite=Strict, Secure behind https)
 * naming a server-side session; every POST also carries the session's form token. No script is served, and
 * the Content-Security-Policy allows none.
 */
import express, { type NextFunction, type Request, type Response } from "express";
import type { AuditRecord, Link } from "../../../../schemas/types.js";
import { validateLink } from "../../../../schemas/contract/schemas.js";
import { PermanentError } from "../../../../schemas/contract/errors.js";
import { bridgeHealthKey } from "../../../../schemas/contract/topology.js";
import type { LinkStore } from "../../../platform/stores/LinkStore.js";
import type { Logger } from "../../../platform/log.js";
import type { ConsentStore } from "../../federation/ConsentStore.js";
import { isFederated } from "../../federation/FederationGate.js";
import { type AdminScope, type AdminTokens, checkNewLink, covers } from "../adminScope.js";
import { toProblem } from "../problem.js";
import type { BridgeStatuses } from "./BridgeStatuses.js";
import type { ConsoleFeed } from "./ConsoleFeed.js";
import { type ConsoleSession, ConsoleSessions, csrfMatches, SESSION_LIFETIME_MS } from "./ConsoleSessions.js";
import type { Html } from "./html.js";
import {
  deadLettersPage,
  decisionsPage,
  errorPage,
  LINKS_SHOWN,
  linksPage,
  loginPage,
  stylesheet,
} from "./consolePages.js";

export interface ConsoleDeps {
  tokens: AdminTokens;
  links: LinkStore;
  checkAgency: (agencyId: string) => boolean;
  feed: ConsoleFeed;
  bridges: BridgeStatuses;
  consents?: ConsentStore;
  sessions?: ConsoleSessions;
  log: Logger;
}

const COOKIE = "fedgate_console";
const linkIdPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

const contentSecurityPolicy =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The console cookie's value, from a Cookie header of any length the server accepted. */
function cookieOf(req: Request): string | undefined {
  for (const part of (req.get("cookie") ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === COOKIE) return value.join("=");
  }
  return undefined;
}

function secure(req: Request): boolean {
  return req.secure || req.get("x-forwarded-proto") === "https";
}

/** Whether an Origin header names the host the request was sent to. */
function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

function send(res: Response, status: number, page: Html): void {
  res.status(status).type("html").send(page.text);
}

function sessionOf(res: Response): ConsoleSession {
  return res.locals["session"] as ConsoleSession;
}

/** A form field as a bounded string; anything else (absent, repeated) is empty. */
function field(req: Request, name: string): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof value === "string" ? value.slice(0, 512) : "";
}

export function consoleRouter(deps: ConsoleDeps): express.Router {
  const log = deps.log.child({ component: "console" });
  const sessions = deps.sessions ?? new ConsoleSessions();
  const router = express.Router();
  const forms = express.urlencoded({ extended: false, limit: "8kb", parameterLimit: 32 });

  router.use((_req, res, next) => {
    res.set({
      "Content-Security-Policy": contentSecurityPolicy,
      "X-Content-Type-Options": "nosniff",
      "X-Frame-Options": "DENY",
      // same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with the console's own forms.
      "Referrer-Policy": "same-origin",
    });
    next();
  });

  // A form posted from another site is refused, the log-in form too (a session planted by another site would
  // have its admin act in someone else's scope); browsers send Origin with every POST.
  router.post(/.*/, (req, res, next) => {
    const origin = req.get("origin");
    // No Origin: not a browser's cross-site form. "null" (a sandboxed or opaque origin) names no host.
    // Behind a reverse proxy that rewrites Host, the address the browser used is X-Forwarded-Host.
    const hosts = [req.get("host"), req.get("x-forwarded-host")];
    if (origin === undefined || hosts.some((host) => sameHost(origin, host))) {
      next();
      return;
    }
    log.warn(
      { remoteAddress: req.socket.remoteAddress, path: req.path },
      "console form from another site refused",
    );
    send(res, 403, errorPage(403, "This form was sent from another site."));
  });

  router.get("/console.css", (_req, res) => {
    res.type("css").send(stylesheet);
  });

  router.get("/login", (_req, res) => {
    send(res, 200, loginPage());
  });

  router.post("/login", forms, (req, res) => {
    const scope = deps.tokens.scopeOf(field(req, "token"));
    if (scope === undefined) {
      log.warn({ remoteAddress: req.socket.remoteAddress }, "console log-in refused");
      send(res, 401, loginPage("That token is not valid."));
      return;
    }
    const session = sessions.create(scope);
    log.info(
      { scope: scope.agency ?? "operator", remoteAddress: req.socket.remoteAddress },
      "console log-in",
    );
    res.cookie(COOKIE, session.id, {
      httpOnly: true,
      sameSite: "strict",
      secure: secure(req),
      path: "/console",
      maxAge: SESSION_LIFETIME_MS,
    });
    res.redirect(303, "/console/links");
  });

  // Everything below needs a session; a POST also needs the session's form token.
  router.use((req, res, next) => {
    const session = sessions.get(cookieOf(req));
    if (session === undefined) {
      if (req.method === "GET") res.redirect(303, "/console/login");
      else send(res, 401, loginPage("Your session has ended; log in again."));
      return;
    }
    res.locals["session"] = session;
    next();
  });
  router.post(/.*/, forms, (req, res, next) => {
    if (csrfMatches(sessionOf(res), field(req, "csrf"))) {
      next();
      return;
    }
    log.warn(
      { remoteAddress: req.socket.remoteAddress, path: req.path },
      "console form without its token refused",
    );
    send(res, 403, errorPage(403, "This form is out of date; reload the page and try again.", context(res)));
  });

  const context = (res: Response): { scope: AdminScope; csrfToken: string } => {
    const session = sessionOf(res);
    return { scope: session.scope, csrfToken: session.csrfToken };
  };
  const scopeOf = (res: Response): AdminScope => sessionOf(res).scope;
  /** The link a path names, when the session's scope covers it; others are not found, as in /v1. */
  const scopedLink = (req: Request, res: Response): Link => {
    const id = String(req.params["id"]);
    const link = linkIdPattern.test(id) ? deps.links.get(id) : undefined;
    if (link === undefined || !covers(scopeOf(res), link))
      throw new PermanentError("FG_LINK_NOT_FOUND", `no link with id ${id}`);
    return link;
  };
  const consentOf = (endpoint: Link["endpoints"][number]): string =>
    isFederated(endpoint)
      ? (deps.consents?.get(endpoint.instance, endpoint.conversation)?.state ?? "not approved")
      : "operator-approved";
  const seesRecord = (scope: AdminScope, record: AuditRecord): boolean => {
    if (scope.agency === undefined) return true;
    if (record.source.agency === scope.agency || record.target?.agency === scope.agency) return true;
    const link = record.linkId === undefined ? undefined : deps.links.get(record.linkId);
    return link !== undefined && covers(scope, link);
  };

  router.get("/", (_req, res) => {
    res.redirect(303, "/console/links");
  });

  router.get("/links", async (_req, res) => {
    const visible = deps.links.list().filter((link) => covers(scopeOf(res), link));
    const shown = visible.slice(0, LINKS_SHOWN);
    // A partner gateway's endpoint has no bridge here: the core delivers to it.
    const bridged = shown.flatMap((link) => link.endpoints.filter((e) => !isFederated(e)));
    const statuses = await deps.bridges.of(bridged);
    const rows = shown.map((link) => ({
      link,
      consents: link.endpoints.map(consentOf),
      activity: deps.feed.activityOf(link.id),
      instances: link.endpoints.map((e) => statuses.get(bridgeHealthKey(e.network, e.instance))),
    }));
    send(res, 200, linksPage(rows, visible.length, context(res)));
  });

  router.post("/links", async (req, res) => {
    const link = validateLink({
      id: field(req, "id"),
      ...(field(req, "description") === "" ? {} : { description: field(req, "description") }),
      endpoints: [1, 2].map((n) => ({
        network: field(req, `network${String(n)}`),
        instance: field(req, `instance${String(n)}`),
        conversation: field(req, `conversation${String(n)}`),
        agency: field(req, `agency${String(n)}`),
      })),
    });
    checkNewLink(link, scopeOf(res), deps.checkAgency);
    await deps.links.create(link);
    log.info(
      { linkId: link.id, scope: scopeOf(res).agency ?? "operator" },
      "link created through the console",
    );
    res.redirect(303, "/console/links");
  });

  router.post("/links/:id/state", async (req, res) => {
    const { id } = scopedLink(req, res);
    const state = field(req, "state");
    if (state !== "active" && state !== "paused")
      throw new PermanentError("FG_REQUEST_INVALID", "a link's state is active or paused");
    await deps.links.setState(id, state);
    log.info(
      { linkId: id, state, scope: scopeOf(res).agency ?? "operator" },
      "link state set through the console",
    );
    res.redirect(303, "/console/links");
  });

  router.post("/links/:id/revoke", async (req, res) => {
    const { id } = scopedLink(req, res);
    await deps.links.delete(id);
    log.info({ linkId: id, scope: scopeOf(res).agency ?? "operator" }, "link revoked through the console");
    res.redirect(303, "/console/links");
  });

  router.get("/decisions", (_req, res) => {
    const scope = scopeOf(res);
    send(
      res,
      200,
      decisionsPage(
        deps.feed.recentDecisions().filter((r) => seesRecord(scope, r)),
        context(res),
      ),
    );
  });

  /** An agency admin sees the dead letters of its links' conversations; the operator sees all. */
  const visibleLetters = (scope: AdminScope) =>
    deps.feed.deadLetters().filter(
      (e) =>
        scope.agency === undefined ||
        e.conversations.some((c) => {
          const link = deps.links.match(c)?.link;
          return link !== undefined && covers(scope, link);
        }),
    );

  router.get("/dead-letters", (_req, res) => {
    send(res, 200, deadLettersPage(visibleLetters(scopeOf(res)), context(res)));
  });

  router.post("/dead-letters/:seq/retry", async (req, res) => {
    const seq = Number(req.params["seq"]);
    if (!visibleLetters(scopeOf(res)).some((e) => e.seq === seq))
      throw new PermanentError("FG_EVENT_INVALID", `no dead letter ${req.params["seq"]} is held`);
    await deps.feed.retry(seq);
    res.redirect(303, "/console/dead-letters");
  });

  router.post("/logout", (req, res) => {
    sessions.end(sessionOf(res).id);
    res.clearCookie(COOKIE, { path: "/console", httpOnly: true, sameSite: "strict", secure: secure(req) });
    res.redirect(303, "/console/login");
  });

  // Failures as a page, with the same status and detail as /v1's problem documents.
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { problem } = toProblem(error, req.baseUrl + req.path);
    if (problem.status >= 500)
      log.error({ err: error, path: req.baseUrl + req.path }, "console request failed");
    const session = res.locals["session"] as ConsoleSession | undefined;
    const page = errorPage(problem.status, problem.detail, session === undefined ? undefined : context(res));
    send(res, problem.status, page);
  });

  return router;
}
