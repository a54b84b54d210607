/**
 * The admin HTTP API: liveness and readiness probes without authentication, and link management under
 * /v1 behind a bearer token, including the one-time join codes that let a room join a link. Every failure
 * is answered as an RFC 9457 problem document (see problem.ts).
 */
import express, { type NextFunction, type Request, type Response } from "express";
import type { ConsentRequest, JoinCodeRequest, Link, LinkStateRequest } from "../../../schemas/types.js";
import { validateLink, validatorFor } from "../../../schemas/contract/schemas.js";
import { PermanentError, ValidationError } from "../../../schemas/contract/errors.js";
import { HttpListener } from "../../platform/http/HttpListener.js";
import type { Logger } from "../../platform/log.js";
import type { ConsentStore } from "../federation/ConsentStore.js";
import type { PartnerManifestStore } from "../federation/PartnerManifestStore.js";
import type { JoinCodeStore } from "../../platform/stores/JoinCodeStore.js";
import { isDirectLink, type LinkStore } from "../../platform/stores/LinkStore.js";
import { answerProbe } from "../../platform/http/probes.js";
import { bodyParserErrorType, HttpProblem, sendProblem, toProblem } from "./problem.js";
import { type AdminScope, AdminTokens, checkNewLink, covers } from "./adminScope.js";
import { eventStatusHandler, type EventStatusSources } from "./eventStatus.js";

/** What the admin API needs from the gateway. */
export interface AdminApiDeps {
  links: LinkStore;
  /** Where join codes are kept (as digests) until a room redeems them. */
  joinCodes: JoinCodeStore;
  /** True when the agency is declared in the policy; links naming any other agency are refused. */
  checkAgency: (agencyId: string) => boolean;
  /** The operator's bearer token for /v1/*, which sees every link. Must not be empty. */
  token: string;
  /** Agency admins' tokens by agency id (admin.agencyTokens): each sees only its agency's links. */
  agencyTokens?: Readonly<Record<string, string>>;
  /** Readiness: each named check true/false (e.g. { nats: true, streams: true, links: true }). */
  readiness: () => Record<string, boolean> | Promise<Record<string, boolean>>;
  /** What became of routed messages; without it, /v1/events is not served. */
  events?: EventStatusSources;
  /** Partner gateways' manifests; without it (no federation configured), /v1/partners is not served. */
  partners?: PartnerManifestStore;
  /** Consent to conversations shared with partner gateways; without it, /v1/consents is not served. */
  consents?: {
    store: ConsentStore;
    /** The partner gateways configured (federation.partners). */
    partners: readonly string[];
    /** How long an approval holds when the request names no time (federation.consentValidityDays). */
    validForDays: number;
  };
  /** The console for agency admins (console/consoleRouter.ts), served under /console with the same tokens. */
  console?: (tokens: AdminTokens) => express.Router;
  log: Logger;
}

/** Largest accepted request body. */
export const bodyLimit = "64kb";

// The id pattern of link.schema.json: anything else cannot name a stored link, and must not reach a KV key.
const linkIdPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;
// A gateway id is a Token (common.schema.json).
const gatewayIdPattern = /^[a-z][a-z0-9-]{0,31}$/;

const validateConsentRequest = validatorFor<ConsentRequest>(
  "schemas/consent-request.schema.json",
  "consent request",
  "FG_REQUEST_INVALID",
);
// A shared conversation's name (federation.schema.json#/$defs/SharedConversation).
const sharedConversationPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;
const DAY_MS = 24 * 60 * 60 * 1000;
const validateLinkStateRequest = validatorFor<LinkStateRequest>(
  "schemas/link-state-request.schema.json",
  "link state request",
  "FG_REQUEST_INVALID",
);
const validateJoinCodeRequest = validatorFor<JoinCodeRequest>(
  "schemas/join-code-request.schema.json",
  "join code request",
  "FG_REQUEST_INVALID",
);

/** The full path of a request, also inside a mounted router. Never the query string, which may hold secrets. */
function requestPath(req: Request): string {
  return req.baseUrl + req.path;
}

/** Checks `Authorization: Bearer <token>` (see AdminTokens) and keeps the token's scope in res.locals. */
function bearerAuth(tokens: AdminTokens, log: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.get("authorization")?.trim() ?? "";
    const space = header.indexOf(" ");
    const scheme = space < 0 ? header : header.slice(0, space);
    const credentials = space < 0 ? "" : header.slice(space + 1).trim();
    let refusal: PermanentError | undefined;
    if (scheme.toLowerCase() !== "bearer") {
      refusal = new PermanentError("FG_AUTH_REQUIRED", "this endpoint needs an Authorization: Bearer header");
    } else {
      const scope = tokens.scopeOf(credentials);
      if (scope === undefined)
        refusal = new PermanentError("FG_AUTH_INVALID", "the bearer token is not valid");
      else res.locals["scope"] = scope;
    }
    if (refusal !== undefined) {
      log.warn(
        {
          code: refusal.code,
          remoteAddress: req.socket.remoteAddress,
          method: req.method,
          path: requestPath(req),
        },
        "admin API request refused",
      );
    }
    next(refusal);
  };
}

/** POST bodies must be JSON; anything else is refused before it is read. */
function requireJson(req: Request, _res: Response, next: NextFunction): void {
  if (req.get("content-type") === undefined || req.is("application/json") === false) {
    next(
      new HttpProblem(415, "FG_MEDIA_TYPE_UNSUPPORTED", "the request body must be application/json", {
        "Accept-Post": "application/json",
      }),
    );
    return;
  }
  next();
}

function linkNotFound(id: string): PermanentError {
  return new PermanentError("FG_LINK_NOT_FOUND", `no link with id ${id}`);
}

/** The scope bearerAuth found for this request. */
function scopeOf(res: Response): AdminScope {
  return res.locals["scope"] as AdminScope;
}

/** Partner gateways and consents are the operator's: an agency admin's token is refused them. */
function operatorOnly(_req: Request, res: Response, next: NextFunction): void {
  next(
    scopeOf(res).agency === undefined
      ? undefined
      : new PermanentError(
          "FG_FORBIDDEN",
          "only the operator's token may manage partner gateways and consents",
        ),
  );
}

/** The admin API as an express app, without a server: probes, /v1/links, problem documents for every failure. */
export function createAdminApp(deps: AdminApiDeps): express.Express {
  const tokens = new AdminTokens(deps.token, deps.agencyTokens);
  const log = deps.log.child({ component: "admin" });
  const app = express();
  app.disable("x-powered-by");

  app.use((req, res, next) => {
    const started = performance.now();
    const path = req.path;
    res.on("close", () => {
      log.debug(
        {
          method: req.method,
          path,
          status: res.statusCode,
          durationMs: Math.round(performance.now() - started),
          completed: res.writableFinished,
          remoteAddress: req.socket.remoteAddress,
        },
        "admin API request",
      );
    });
    // Link lists and probe results are live state; no cache should keep them.
    res.set("Cache-Control", "no-store");
    next();
  });

  // The probes and /metrics every process answers, unauthenticated: states, counts and timings, no content.
  app.use((req, res, next) => {
    if (!answerProbe(req, res, deps.readiness, log)) next();
  });

  const v1 = express.Router();
  v1.use(bearerAuth(tokens, log));
  // An event's outcomes name every target it went to, whatever agency: the operator's to read.
  v1.use(["/partners", "/consents", "/events"], operatorOnly);

  /** The link a path names, if this token's scope covers it; others are not found, so as not to tell they exist. */
  const scopedLink = (req: Request, res: Response): Link => {
    const id = String(req.params["id"]);
    const link = linkIdPattern.test(id) ? deps.links.get(id) : undefined;
    if (link === undefined || !covers(scopeOf(res), link)) throw linkNotFound(id);
    return link;
  };

  v1.get("/links", (_req, res) => {
    res.json({ links: deps.links.list().filter((link) => covers(scopeOf(res), link)) });
  });

  v1.get("/links/:id", (req, res) => {
    res.json(scopedLink(req, res));
  });

  v1.post("/links", requireJson, express.json({ limit: bodyLimit }), async (req, res) => {
    const body: unknown = req.body;
    // Validating here first keeps the order of answers stable: a malformed link is 400 before its agencies are 422.
    const link = validateLink(body);
    checkNewLink(link, scopeOf(res), deps.checkAgency);
    const { agency } = scopeOf(res);
    const stored = await deps.links.create(link);
    log.info(
      { linkId: stored.id, scope: agency ?? "operator", remoteAddress: req.socket.remoteAddress },
      "link created through the admin API",
    );
    res.status(201).location(`/v1/links/${stored.id}`).json(stored);
  });

  // A one-time code that lets one conversation (a room) join the link; see JoinCodeStore.
  v1.post("/links/:id/join-codes", requireJson, express.json({ limit: bodyLimit }), async (req, res) => {
    const link = scopedLink(req, res);
    const { id } = link;
    const request = validateJoinCodeRequest(req.body);
    const { agency } = scopeOf(res);
    if (agency !== undefined && request.agency !== agency)
      throw new PermanentError(
        "FG_FORBIDDEN",
        `agency ${agency}'s admin can only issue join codes for its own rooms`,
      );
    if (!deps.checkAgency(request.agency))
      throw new ValidationError("FG_AGENCY_UNKNOWN", "join code request", [
        { pointer: "/agency", message: `agency "${request.agency}" is not declared in the policy` },
      ]);
    if (isDirectLink(link))
      throw new PermanentError(
        "FG_LINK_CONFLICT",
        `link ${id} is a direct chat between two people; it takes no other conversation`,
      );
    const { conversation } = request;
    if (conversation !== undefined && deps.links.match({ ...request, conversation }) !== undefined)
      throw new PermanentError("FG_LINK_CONFLICT", "that conversation belongs to a link already");
    const issued = await deps.joinCodes.issue(id, request);
    // Who may join what, for the audit; never the code itself.
    log.info(
      {
        linkId: id,
        codeId: issued.codeId,
        network: issued.network,
        instance: issued.instance,
        agency: issued.agency,
        ...(conversation === undefined ? {} : { conversation }),
        expiresAt: issued.expiresAt,
        remoteAddress: req.socket.remoteAddress,
      },
      "join code issued through the admin API",
    );
    res.status(201).json(issued);
  });

  v1.delete("/links/:id", async (req, res) => {
    const id = req.params.id;
    if (!linkIdPattern.test(id)) throw linkNotFound(id);
    // The operator may delete a link this replica has not seen yet; an agency admin only one it covers.
    const { agency } = scopeOf(res);
    if (agency !== undefined) scopedLink(req, res);
    await deps.links.delete(id);
    log.info(
      { linkId: id, scope: agency ?? "operator", remoteAddress: req.socket.remoteAddress },
      "link deleted through the admin API",
    );
    res.status(204).end();
  });

  // Pausing stops every event of the link at the core (denied as link-paused); active lets them through again.
  v1.put("/links/:id/state", requireJson, express.json({ limit: bodyLimit }), async (req, res) => {
    const { id } = scopedLink(req, res);
    const { state } = validateLinkStateRequest(req.body);
    const changed = await deps.links.setState(id, state);
    log.info(
      {
        linkId: id,
        state,
        scope: scopeOf(res).agency ?? "operator",
        remoteAddress: req.socket.remoteAddress,
      },
      "link state set through the admin API",
    );
    res.json(changed);
  });

  if (deps.events !== undefined) v1.get("/events/:id", eventStatusHandler(deps.events));

  const { partners } = deps;
  if (partners !== undefined) {
    const partnerNotFound = (id: string): PermanentError =>
      new PermanentError("FG_PARTNER_NOT_FOUND", `no partner gateway with id ${id}`);

    v1.get("/partners/:id", async (req, res) => {
      const id = req.params.id;
      const manifest = gatewayIdPattern.test(id) ? await partners.get(id) : undefined;
      if (manifest === undefined) throw partnerNotFound(id);
      res.json(manifest);
    });

    // A partner's signed manifest, as its issuing authority signed it; verified against federation.authorities.
    v1.put("/partners/:id/manifest", requireJson, express.json({ limit: bodyLimit }), async (req, res) => {
      const id = String(req.params["id"]);
      if (!gatewayIdPattern.test(id)) throw partnerNotFound(id);
      const claimed = (req.body as { manifest?: { gateway?: { id?: unknown } } } | null)?.manifest?.gateway
        ?.id;
      if (claimed !== id)
        throw new PermanentError(
          "FG_MANIFEST_INVALID",
          `the manifest is gateway ${typeof claimed === "string" ? claimed : "(none)"}'s, not ${id}'s`,
        );
      const manifest = await partners.accept(req.body);
      log.info(
        {
          gateway: manifest.gateway.id,
          version: manifest.version,
          agencies: manifest.agencies.map((a) => a.id),
          remoteAddress: req.socket.remoteAddress,
        },
        "partner manifest accepted through the admin API",
      );
      res.json(manifest);
    });
  }

  const { consents } = deps;
  if (consents !== undefined) {
    const { store } = consents;
    /** The partner and conversation a path names, or FG_PARTNER_NOT_FOUND / FG_CONSENT_NOT_FOUND. */
    const named = (req: Request): { partner: string; conversation: string } => {
      const partner = String(req.params["partner"]);
      const conversation = String(req.params["conversation"]);
      if (!consents.partners.includes(partner))
        throw new PermanentError(
          "FG_PARTNER_NOT_FOUND",
          `${partner} is not a partner gateway of this one (federation.partners)`,
        );
      if (!sharedConversationPattern.test(conversation))
        throw new PermanentError("FG_CONSENT_NOT_FOUND", `no shared conversation named ${conversation}`);
      return { partner, conversation };
    };

    v1.get("/consents", (_req, res) => {
      res.json({ consents: store.list() });
    });

    v1.get("/consents/:partner/:conversation", (req, res) => {
      const { partner, conversation } = named(req);
      const consent = store.get(partner, conversation);
      if (consent === undefined)
        throw new PermanentError(
          "FG_CONSENT_NOT_FOUND",
          `neither gateway has approved ${conversation} shared with ${partner}`,
        );
      res.json(consent);
    });

    // This gateway's approval: signed, kept, and sent to the partner; active once the partner approves too.
    v1.put(
      "/consents/:partner/:conversation",
      requireJson,
      express.json({ limit: bodyLimit }),
      async (req, res) => {
        const { partner, conversation } = named(req);
        const request = validateConsentRequest(req.body);
        const days = request.validForDays ?? consents.validForDays;
        const signed = await store.decide(partner, conversation, {
          state: "granted",
          validForMs: days * DAY_MS,
          ...(request.approvedBy === undefined ? {} : { approvedBy: request.approvedBy }),
        });
        log.info(
          {
            partner,
            conversation,
            serial: signed.grant.serial,
            expiresAt: signed.grant.expiresAt,
            remoteAddress: req.socket.remoteAddress,
          },
          "consent granted through the admin API",
        );
        res.json(store.get(partner, conversation));
      },
    );

    // Revocation takes effect on this gateway at once, whether or not the partner hears of it.
    v1.delete("/consents/:partner/:conversation", async (req, res) => {
      const { partner, conversation } = named(req);
      const signed = await store.decide(partner, conversation, {
        state: "revoked",
        validForMs: consents.validForDays * DAY_MS,
      });
      log.info(
        { partner, conversation, serial: signed.grant.serial, remoteAddress: req.socket.remoteAddress },
        "consent revoked through the admin API",
      );
      res.json(store.get(partner, conversation));
    });
  }

  // A link that is not JSON is an invalid link; any other body is an invalid request (problem.ts).
  v1.use((error: unknown, req: Request, _res: Response, next: NextFunction) => {
    const malformed = bodyParserErrorType(error) === "entity.parse.failed" && req.path === "/links";
    next(malformed ? new PermanentError("FG_LINK_INVALID", "the request body is not valid JSON") : error);
  });

  app.use("/v1", v1);
  if (deps.console !== undefined) app.use("/console", deps.console(tokens));

  app.use((req, _res, next) => {
    next(new HttpProblem(404, "FG_ROUTE_NOT_FOUND", `no route for ${req.method} ${req.path}`));
  });

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const context = { method: req.method, path: requestPath(req) };
    if (res.headersSent) {
      // Too late for a problem document; dropping the connection tells the client the response is incomplete.
      log.error({ err: error, ...context }, "admin API request failed after the response started");
      res.destroy();
      return;
    }
    const mapped = toProblem(error, requestPath(req));
    if (mapped.problem.status === 503)
      log.warn({ err: error, ...context }, "admin API request hit a transient failure");
    else if (mapped.problem.status >= 500) log.error({ err: error, ...context }, "admin API request failed");
    sendProblem(res, mapped);
  });

  return app;
}

/** The admin API listening on a socket; rejects with FG_SERVER_START_FAILED when the address cannot be bound. */
export async function listenAdminApi(deps: AdminApiDeps, host: string, port: number): Promise<HttpListener> {
  return await HttpListener.listen(createAdminApp(deps), {
    host,
    port,
    what: "admin API",
    log: deps.log,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
  });
}
