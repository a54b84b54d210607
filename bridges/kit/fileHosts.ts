/**
 * Which hosts a bridge fetches files from. A file link comes from a native user or from another network's
 * event; fetched blindly, it would make the bridge read its own machine, cluster or agency network and hand
 * the bytes to other agencies (SSRF). The rule:
 *
 * - a host the operator trusts (the bridge's `attachments.hosts`, or the bridge's own server when it reads
 *   its own network's files) is fetched whatever address it has: the operator vouches for it;
 * - any other host only when `publicHosts` is on (the default) and every address it resolves to is public
 *   (see publicAddress.ts), checked where the connection is made (fileHostDispatcher.ts).
 *
 * Hosts are matched by name, as the link spells it, never by address: trusting a name does not trust
 * whatever else resolves to the same address.
 */
import { isIPv6 } from "node:net";
import { PermanentError } from "../../schemas/contract/errors.js";

export interface FileHosts {
  /**
   * Hosts fetched from whatever their address: "host" (any port), "host:port", or a URL, which means its
   * host and port (the scheme's default when it names none).
   */
  trusted: readonly string[];
  /** Whether other hosts are fetched when every address they resolve to is public; default true. */
  publicHosts?: boolean;
}

/** Public addresses only: the rule when nobody says otherwise. */
export const PUBLIC_HOSTS_ONLY: FileHosts = { trusted: [], publicHosts: true };

interface HostRule {
  hostname: string;
  /** Undefined: any port. */
  port?: number;
}

/** "host[:port]" as written; the port must be a number, the host anything a URL takes. */
const BARE_HOST = /^(\[[^\]]*\]|[^:/?#@\s]+)(?::(\d{1,5}))?$/;

function defaultPort(protocol: string): number {
  return protocol === "https:" ? 443 : 80;
}

/**
 * A trusted host as a rule, its name as the WHATWG URL parser writes it (lowercase, punycode, IPv6 in
 * brackets, IPv4 in dotted decimal), so that it compares with what a link's URL says.
 */
function parseRule(entry: string): HostRule {
  const bad = (cause?: unknown): never => {
    throw new PermanentError(
      "FG_CONFIG_INVALID",
      `attachments.hosts: ${JSON.stringify(entry)} is not a host, host:port or http(s) URL`,
      { cause },
    );
  };
  try {
    if (entry.includes("://")) {
      const url = new URL(entry);
      if (url.protocol !== "http:" && url.protocol !== "https:") bad();
      return { hostname: url.hostname, port: url.port === "" ? defaultPort(url.protocol) : Number(url.port) };
    }
    const match = BARE_HOST.exec(entry.trim());
    if (match === null) return bad();
    const hostname = new URL(`http://${match[1] ?? ""}`).hostname;
    return match[2] === undefined ? { hostname } : { hostname, port: Number(match[2]) };
  } catch (error) {
    if (error instanceof PermanentError) throw error;
    return bad(error);
  }
}

/** A hostname as a URL writes it: what the connection layer calls "::1" is "[::1]" there. */
function urlHostname(hostname: string): string {
  const bare = hostname.toLowerCase().replace(/\.$/, "");
  return isIPv6(bare) ? `[${bare}]` : bare;
}

/**
 * True when `hostname` (as a URL or the connection layer names it) on `port` is one of the trusted hosts.
 * FG_CONFIG_INVALID for an entry that is not a host.
 */
export function isTrustedHost(hosts: FileHosts, hostname: string, port: number): boolean {
  const name = urlHostname(hostname);
  return hosts.trusted.some((entry) => {
    const rule = parseRule(entry);
    return urlHostname(rule.hostname) === name && (rule.port === undefined || rule.port === port);
  });
}
