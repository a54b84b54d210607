/**
 * What the XMPP bridge's tests and the demo need from a throwaway XMPP server, whichever implementation runs
 * it (LocalProsody, LocalEjabberd): the same scenarios then run against each.
 */
import type { XmppBridgeConfig } from "../../../../bridges/xmpp/config.types.js";
import { validateXmppConfig } from "../../../../bridges/xmpp/config.js";

export interface LocalXmppServer {
  /** The virtual host users live on. */
  readonly domain: string;
  /** The group chat (XEP-0045) service. */
  readonly mucDomain: string;
  /** The XEP-0114 component domain of the bridge. */
  readonly componentDomain: string;
  readonly componentSecret: string;
  /** Where clients connect, as xmpp://127.0.0.1:<port>. */
  readonly c2sUrl: string;
  /** Where the bridge's component connects, as xmpp://127.0.0.1:<port>. */
  readonly componentUrl: string;
  /** Creates the account, or resets its password; returns the bare JID. Works while the server runs. */
  addUser(localpart: string, password: string): Promise<string>;
  /** Stops and starts again on the same ports with the same data: rooms, archives and accounts remain. */
  restart(): Promise<void>;
  /** Shuts the server down and removes its temporary folder, if it made one. */
  stop(): Promise<void>;
  /** The bridge's config for this server: its component, its users' domain and its group chat service. */
  bridgeConfig(instance?: string): XmppBridgeConfig;
}

/** The bridge's config for a local server: its component, its users' domain and its group chat service. */
export function bridgeConfigFor(server: LocalXmppServer, instance: string): XmppBridgeConfig {
  return validateXmppConfig({
    instance,
    service: server.componentUrl,
    domain: server.componentDomain,
    secret: { value: server.componentSecret },
    userDomains: [server.domain],
    mucDomains: [server.mucDomain],
  });
}
