/**
 * The connections of file downloads, where fileHosts.ts's rule is enforced: every connection, redirects
 * included, asks whether its host is trusted, and otherwise whether the address it is about to connect to is
 * public. A name is resolved once per connection, every address it gives is checked, and the socket connects
 * to those checked addresses only (Node's lookup hook), so no second resolution can swap in another one (DNS
 * rebinding). A refusal happens before any packet reaches the host: it looks the same whether the port is
 * open, closed or filtered.
 */
import { promises as dns, type LookupAddress } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { Agent, buildConnector } from "undici";
import { PermanentError } from "../../schemas/contract/errors.js";
import { isTrustedHost, type FileHosts } from "./fileHosts.js";
import { isPublicAddress } from "./publicAddress.js";

/** Every address of a name, as the system resolves it. */
export type Resolve = (hostname: string) => Promise<LookupAddress[]>;

const systemResolve: Resolve = (hostname) => dns.lookup(hostname, { all: true });

/** The refusal of a host the rules do not let the bridge read; FG_ATTACHMENT_INVALID, never retried. */
function refused(host: string, why: string): PermanentError {
  return new PermanentError("FG_ATTACHMENT_INVALID", `attachment at ${host}: ${why}`, {
    detail: { host, refused: true },
  });
}

const NOT_LISTED = "the host is not among attachments.hosts";
const NOT_PUBLIC = `${NOT_LISTED}, and its address is not a public one`;

/**
 * A lookup for net.connect that resolves the name once and hands on its addresses only when every one is
 * allowed; else it fails with the refusal (one bad address is enough: the system would pick one).
 */
export function pinnedLookup(
  resolve: Resolve,
  isAllowedAddress: (address: string) => boolean,
): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (resolved) => {
        const family = options.family === 4 || options.family === 6 ? options.family : undefined;
        const addresses = resolved.filter((a) => family === undefined || a.family === family);
        const first = addresses[0];
        if (first === undefined || resolved.some((a) => !isAllowedAddress(a.address))) {
          callback(refused(hostname, NOT_PUBLIC), "", 0);
          return;
        }
        if (options.all === true) callback(null, addresses);
        else callback(null, first.address, first.family);
      },
      (error: unknown) => callback(error as NodeJS.ErrnoException, "", 0),
    );
  };
}

/** Test seams: where names resolve, and which addresses count as public. */
export interface FileHostSeams {
  resolve?: Resolve;
  isAllowedAddress?: (address: string) => boolean;
}

/**
 * An undici dispatcher that connects only where `hosts` allows. One per download: its connections end with
 * it (close or destroy it when done).
 */
export function fileHostDispatcher(hosts: FileHosts, seams: FileHostSeams = {}): Agent {
  const isAllowedAddress = seams.isAllowedAddress ?? isPublicAddress;
  const direct = buildConnector({});
  const checked = buildConnector({ lookup: pinnedLookup(seams.resolve ?? systemResolve, isAllowedAddress) });
  const connect: buildConnector.connector = (options, callback) => {
    const port = options.port === "" ? (options.protocol === "https:" ? 443 : 80) : Number(options.port);
    const host = options.host ?? options.hostname;
    if (isTrustedHost(hosts, options.hostname, port)) {
      direct(options, callback);
      return;
    }
    if (hosts.publicHosts === false) {
      callback(refused(host, NOT_LISTED), null);
      return;
    }
    // An address in the URL is connected to as is: net.connect looks up names only.
    if (isIP(options.hostname) !== 0) {
      if (isAllowedAddress(options.hostname)) direct(options, callback);
      else callback(refused(host, NOT_PUBLIC), null);
      return;
    }
    checked(options, callback);
  };
  return new Agent({ connect });
}
