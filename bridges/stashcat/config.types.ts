/* Generated from bridges/stashcat/config.schema.json by `npm run generate`. Do not edit: change the schema instead. */

import type { ConnectionCheck, Secret, StatusListen } from "../../schemas/types.js";

export interface StashcatBridgeConfig {
  /**
   * The network instance this Stashcat is, as links and the policy name it (e.g. ni).
   */
  instance: string;
  /**
   * The REST API, e.g. https://api.stashcat.com/.
   */
  apiUrl: string;
  /**
   * The socket.io push service, e.g. https://push.stashcat.com.
   */
  pushUrl: string;
  /**
   * The service account's login.
   */
  email: string;
  password: Secret;
  encryptionPassword?: Secret;
  /**
   * The device id the bridge logs in with; keep it stable, so that a restart reuses its session.
   */
  deviceId: string;
  appName: string;
  /**
   * The agency whose officers use this Stashcat. It owns the Stashcat side of direct chats; without it, they are refused.
   */
  agency?: string;
  listen: StashcatListen;
  /**
   * The base URL other bridges fetch those files from; default http://<listen.host>:<listen.port>.
   */
  publicUrl?: string;
  attachments: StashcatAttachments;
  /**
   * Longer message texts are refused.
   */
  maxBodyBytes: number;
  status: StatusListen;
  connectionCheck: ConnectionCheck;
}
/**
 * Where the bridge serves the decrypted files of Stashcat messages to the other bridges.
 */

export interface StashcatListen {
  host: string;
  port: number;
}

export interface StashcatAttachments {
  /**
   * Larger files are not bridged, in either direction (the policy may allow less).
   */
  maxBytes: number;
  /**
   * Hosts the bridge fetches files from whatever their address: "host" (any port), "host:port" or a URL (its host and port), matched by name as the file links spell them. List where the other networks' file links point when that is not a public address: the other bridges' publicUrl (the chart fills them in), an XMPP server's upload service. Any other host: see publicHosts.
   *
   * @maxItems 100
   */
  hosts?: string[];
  /**
   * Whether a host not in hosts is fetched when every address it resolves to is public (global unicast): a link to the internet works, one to loopback, private, shared (CGNAT), link-local (cloud metadata) or other special-purpose addresses is refused. false: only the hosts listed (and the bridge's own server) are fetched from.
   */
  publicHosts: boolean;
  /**
   * How long, in seconds, a file link the bridge hands out to the other bridges stays valid: between half of this and all of it (links made meanwhile are the same, so a person's picture is not fetched again for each message). A link past its expiry is refused with HTTP 410. Keep it above the longest a delivery may wait (a bridge down, retries).
   */
  linkLifetimeSeconds: number;
}
/**
 * Where a bridge serves its probes and metrics (GET /healthz, /readyz, /metrics) to the kubelet and Prometheus: never the address it serves its network on, so that neither is reachable from the other's side.
 */
