/**
 * The console's pages as server-rendered HTML: no script at all, one stylesheet from the same origin, and
 * every value escaped (see html.ts). Decisions and dead letters are shown as metadata only.
 */
import type { AuditRecord, Endpoint, Link } from "../../../../schemas/types.js";
import { conversationKey } from "../../../platform/stores/LinkStore.js";
import { isFederated } from "../../federation/FederationGate.js";
import type { AdminScope } from "../adminScope.js";
import type { InstanceStatus } from "./BridgeStatuses.js";
import type { DeadLetterEntry, DirectionActivity } from "./ConsoleFeed.js";
import { Html, html } from "./html.js";

export const stylesheet = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f5f6f8; }
header { background: #1f3a5f; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.2rem; align-items: center; }
header a { color: #fff; } header form { margin-left: auto; }
main { padding: 1rem 1.2rem; }
table { border-collapse: collapse; width: 100%; background: #fff; margin-bottom: 1.2rem; }
th, td { border: 1px solid #d5d9e0; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #e9edf2; }
.state-active, .health-healthy, .decision-deliver, .bridge-connected { color: #176b2c; font-weight: 600; }
.state-paused, .health-paused, .health-denied, .decision-deny { color: #a3261b; font-weight: 600; }
.bridge-not-answering, .bridge-disconnected, .bridge-not-reporting { color: #a3261b; font-weight: 600; }
.endpoint + .endpoint { margin-top: .6rem; }
.muted { color: #5d6675; } .error { color: #a3261b; font-weight: 600; }
form.inline { display: inline; } fieldset { background: #fff; border: 1px solid #d5d9e0; margin-bottom: 1rem; }
label { display: inline-block; margin: .2rem .6rem .2rem 0; } code { font-size: 13px; }
`;

export interface PageContext {
  scope: AdminScope;
  csrfToken: string;
}

function who(scope: AdminScope): string {
  return scope.agency === undefined ? "operator (all agencies)" : `agency ${scope.agency}`;
}

function page(title: string, body: Html, context?: PageContext): Html {
  const nav =
    context === undefined
      ? html``
      : html`<a href="/console/links">Links</a><a href="/console/decisions">Decisions</a
          ><a href="/console/dead-letters">Dead letters</a><span class="muted">${who(context.scope)}</span>
          <form class="inline" method="post" action="/console/logout">
            <input type="hidden" name="csrf" value="${context.csrfToken}" /><button type="submit">
              Log out
            </button>
          </form>`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>${title} · fedgate console</title>
        <link rel="stylesheet" href="/console/console.css" />
      </head>
      <body>
        <header><strong>fedgate console</strong>${nav}</header>
        <main>
          <h1>${title}</h1>
          ${body}
        </main>
      </body>
    </html>`;
}

export function loginPage(error?: string): Html {
  return page(
    "Log in",
    html`${error === undefined ? html`` : html`<p class="error" id="login-error">${error}</p>`}
      <form method="post" action="/console/login">
        <label
          >Admin token <input type="password" name="token" autocomplete="current-password" required
        /></label>
        <button type="submit">Log in</button>
      </form>`,
  );
}

export function errorPage(status: number, detail: string, context?: PageContext): Html {
  return page(
    `Error ${String(status)}`,
    html`<p class="error" id="error">${detail}</p>
      <p><a href="/console/links">Back to the links</a></p>`,
    context,
  );
}

/** What the console says of a link's health, from its state and each direction's last decision. */
export function healthOf(
  link: Link,
  activity: readonly DirectionActivity[],
): { label: string; kind: string } {
  if (link.state === "paused") return { label: "paused", kind: "paused" };
  const denied = activity.filter((a) => a.decision === "deny");
  if (denied.length > 0)
    return { label: `last message denied (${denied.map((a) => a.reason).join(", ")})`, kind: "denied" };
  return { label: "healthy", kind: "healthy" };
}

/** What the console says of a bridge's connection, from its report. */
export function connectionOf(bridge: InstanceStatus["bridge"]): { label: string; kind: string } {
  if (bridge === undefined) return { label: "not reporting", kind: "not-reporting" };
  if (!bridge.connected) return { label: "disconnected, reconnecting", kind: "disconnected" };
  if (!bridge.answering) return { label: "not answering", kind: "not-answering" };
  return { label: "connected", kind: "connected" };
}

const plural = (n: number, one: string): string => `${String(n)} ${one}${n === 1 ? "" : "s"}`;

/** The endpoint's bridge (or, for a partner gateway's endpoint, the federation) and its deliveries' lag. */
function bridgeLine(endpoint: Endpoint, status: InstanceStatus | undefined): Html {
  if (isFederated(endpoint))
    return html`<div class="muted bridge">delivered through the partner gateway, not a bridge</div>`;
  const bridge = status?.bridge;
  const connection = connectionOf(bridge);
  const lag = status?.lag;
  return html`<div class="bridge">
    bridge:
    <span class="bridge-state bridge-${connection.kind}">${connection.label}</span>${
      bridge === undefined
        ? html``
        : html`<span class="bridge-counts"
              >, ${plural(bridge.stalls, "stall")}, ${plural(bridge.reconnects, "reconnect")} since
              ${bridge.startedAt}</span
            >${
              bridge.roundTripMs === undefined
                ? html``
                : html`<span class="muted">, round trip ${String(bridge.roundTripMs)} ms</span>`
            }`
    }<br />
    <span class="delivery-lag"
      >${
        lag === undefined
          ? "deliveries: none consumed yet"
          : `deliveries: ${String(lag.pending)} pending, ${String(lag.ackPending)} unacknowledged`
      }</span
    >
  </div>`;
}

function endpointCell(endpoint: Endpoint, consent: string, status: InstanceStatus | undefined): Html {
  return html`<div class="endpoint" data-instance="${endpoint.network}.${endpoint.instance}">
    <strong>${endpoint.agency}</strong> <code>${conversationKey(endpoint)}</code><br /><span class="muted"
      >consent: ${consent}</span
    >
    ${bridgeLine(endpoint, status)}
  </div>`;
}

function activityCell(activity: readonly DirectionActivity[]): Html {
  if (activity.length === 0) return html`<span class="muted">no message since the core started</span>`;
  return html`${activity.map(
    (a) =>
      html`<div>
        <code>${a.from}</code> → <code>${a.to}</code>: ${a.at}
        <span class="decision-${a.decision}">${a.decision}</span> (${a.reason})
      </div>`,
  )}`;
}

function hidden(csrfToken: string): Html {
  return html`<input type="hidden" name="csrf" value="${csrfToken}" />`;
}

export interface LinkRow {
  link: Link;
  consents: string[];
  activity: DirectionActivity[];
  /** Each endpoint's network instance, in the order of link.endpoints. */
  instances: (InstanceStatus | undefined)[];
}

/** The most links one page shows: each costs a look-up of its bridges on every load. */
export const LINKS_SHOWN = 500;

export function linksPage(rows: readonly LinkRow[], total: number, context: PageContext): Html {
  const body = rows.map(({ link, consents, activity, instances }) => {
    const health = healthOf(link, activity);
    const state = link.state ?? "active";
    const next = state === "paused" ? "active" : "paused";
    return html`<tr data-link="${link.id}">
      <td><code>${link.id}</code><br /><span class="muted">${link.description}</span></td>
      <td class="state-${state}">${state}</td>
      <td>${link.endpoints.map((e, i) => endpointCell(e, consents[i] ?? "unknown", instances[i]))}</td>
      <td>
        <div class="health health-${health.kind}">${health.label}</div>
        ${activityCell(activity)}
      </td>
      <td>
        <form class="inline" method="post" action="/console/links/${link.id}/state">
          ${hidden(context.csrfToken)}<input type="hidden" name="state" value="${next}" />
          <button type="submit" name="action" value="${next}">
            ${next === "paused" ? "Pause" : "Resume"}
          </button>
        </form>
        <form class="inline" method="post" action="/console/links/${link.id}/revoke">
          ${hidden(context.csrfToken)}<button type="submit">Revoke</button>
        </form>
      </td>
    </tr>`;
  });
  const own = context.scope.agency ?? "";
  const side = (n: number, agency: string): Html =>
    html`<div>
      Side ${String(n)}:
      <label>network <input name="network${String(n)}" required /></label>
      <label>instance <input name="instance${String(n)}" required /></label>
      <label>conversation <input name="conversation${String(n)}" required /></label>
      <label>agency <input name="agency${String(n)}" value="${agency}" required /></label>
    </div>`;
  return page(
    "Links",
    html`<p>
        <a href="/console/links">Refresh</a>
        <span class="muted"
          >bridges as they last reported; delivery lag as NATS counted it, at most 15 s ago</span
        >
      </p>
      ${
        total > rows.length
          ? html`<p class="error" id="links-truncated">
              ${String(rows.length)} of ${String(total)} links shown; the admin API (/v1/links) lists them
              all.
            </p>`
          : html``
      }
      <table id="links">
        <thead>
          <tr>
            <th>Link</th>
            <th>State</th>
            <th>Endpoints (consent, bridge, deliveries)</th>
            <th>Health (last message each way)</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          ${
            rows.length === 0
              ? [
                  html`<tr>
                    <td colspan="5" class="muted">no links</td>
                  </tr>`,
                ]
              : body
          }
        </tbody>
      </table>
      <form method="post" action="/console/links">
        <fieldset>
          <legend>Create a link</legend>
          ${hidden(context.csrfToken)}
          <label>id <input name="id" required pattern="[a-z0-9][a-z0-9\\-]{0,62}" /></label>
          <label>description <input name="description" /></label>
          ${side(1, own)} ${side(2, "")}
          <button type="submit">Create</button>
        </fieldset>
      </form>
      <p class="muted">
        Consent of local links: the operator-approved link is in force as soon as it is created; the other
        agency's admin is not asked. Links with a partner gateway show that gateway's consent state.
      </p>`,
    context,
  );
}

export function decisionsPage(records: readonly AuditRecord[], context: PageContext): Html {
  const where = (
    e: { network: string; instance: string; conversation: string; agency?: string } | undefined,
  ): Html =>
    e === undefined
      ? html`-`
      : html`<code>${conversationKey(e)}</code> ${e.agency === undefined ? "" : `(${e.agency})`}`;
  return page(
    "Recent decisions and denials",
    html`<p>
        <a href="/console/decisions">Refresh</a> <span class="muted">metadata only; newest first</span>
      </p>
      <table id="decisions">
        <thead>
          <tr>
            <th>Time</th>
            <th>Event</th>
            <th>Type</th>
            <th>From</th>
            <th>To</th>
            <th>Link</th>
            <th>Decision</th>
            <th>Reason</th>
          </tr>
        </thead>
        <tbody>
          ${records.map(
            (r) =>
              html`<tr>
                <td>${r.decidedAt}</td>
                <td><code>${r.eventId}</code></td>
                <td>${r.eventType}</td>
                <td>${where(r.source)}</td>
                <td>${where(r.target)}</td>
                <td><code>${r.linkId}</code></td>
                <td class="decision-${r.decision}">${r.decision}</td>
                <td class="reason">${r.reason}</td>
              </tr>`,
          )}
        </tbody>
      </table>`,
    context,
  );
}

export function deadLettersPage(entries: readonly DeadLetterEntry[], context: PageContext): Html {
  return page(
    "Dead letters",
    html`<p class="muted">
        What the core or a bridge gave up on: where, why and when; never the message itself.
      </p>
      <table id="dead-letters">
        <thead>
          <tr>
            <th>#</th>
            <th>Failed at</th>
            <th>Origin</th>
            <th>Subject</th>
            <th>Code</th>
            <th>Why</th>
            <th>Conversations</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          ${entries.map(
            (e) =>
              html`<tr>
                <td>${e.seq}</td>
                <td>${e.failedAt}</td>
                <td>${e.origin}</td>
                <td><code>${e.subject}</code></td>
                <td>${e.code}</td>
                <td>${e.message}</td>
                <td>${e.conversations.map((c) => html`<code>${conversationKey(c)}</code> `)}</td>
                <td>
                  ${
                    e.retriedAt === undefined
                      ? html`<form class="inline" method="post" action="/console/dead-letters/${e.seq}/retry">
                          ${hidden(context.csrfToken)}<button type="submit">Retry</button>
                        </form>`
                      : html`retried ${e.retriedAt}`
                  }
                </td>
              </tr>`,
          )}
        </tbody>
      </table>`,
    context,
  );
}
