/* Generated from bridges/xmpp/config.schema.json by `npm run generate`. Do not edit: change the schema instead. */

import type { ConnectionCheck, Secret, StatusListen } from "../../schemas/types.js";

export interface XmppBridgeConfig {
  /**
   * The network instance this server is, as links and the policy name it (e.g. bpol).
   */
  instance: string;
  /**
   * The server's component port, e.g. xmpp://127.0.0.1:5347.
   */
  service: string;
  /**
   * The bridge's own component domain; every puppet is a JID on it.
   */
  domain: string;
  secret: Secret;
  /**
   * Domains whose users may write through the bridge; anything else is refused.
   *
   * @minItems 1
   */
  userDomains: [string, ...string[]];
  /**
   * Group chat (XEP-0045) services whose rooms may be linked.
   */
  mucDomains: string[];
  /**
   * The agency whose officers use this server. It owns the XMPP side of every direct chat an officer opens by writing to a puppet; without it, such messages are refused.
   */
  agency?: string;
  /**
   * Nickname of the bridge's own occupant, which listens in linked rooms.
   */
  botNick: string;
  /**
   * Security labels (XEP-0258) and the policy markings they stand for. A message whose label is not listed is refused, as is one with more than one label or with an equivalent label.
   */
  labels: XmppSecurityLabel[];
  attachments: XmppAttachments;
  storeRetry: XmppStoreRetry;
  /**
   * Longer message bodies are refused with a stanza error.
   */
  maxBodyBytes: number;
  status: StatusListen;
  connectionCheck: ConnectionCheck;
}

export interface XmppSecurityLabel {
  /**
   * Identifier of a classification or protection marking declared in the policy, e.g. "DE-VS-NFD".
   */
  marking: string;
  /**
   * The label's display marking, e.g. VS-NfD.
   */
  displayMarking: string;
  /**
   * The base64 ESS security label, where the server's label catalogue uses one. A message's ESS label decides: it must be listed here, and its display marking, if any, must be this entry's.
   */
  ess?: string;
  fgcolor?: string;
  bgcolor?: string;
}
/**
 * Files: uploaded to the server's HTTP File Upload service (XEP-0363) and announced with out-of-band data (XEP-0066).
 */

export interface XmppAttachments {
  /**
   * Larger files are not bridged, in either direction (the policy may allow less).
   */
  maxBytes: number;
  /**
   * JID of the upload service puppets upload to; default: the one the first of userDomains announces.
   */
  uploadService?: string;
  /**
   * Hosts the bridge fetches files from whatever their address: "host" (any port), "host:port" or a URL (its host and port), matched by name as the file links spell them. List the HTTP host of the XMPP server's upload service when it is not on a public address (native users' links point there), and the other bridges' publicUrl (the chart fills them in). Any other host: see publicHosts.
   *
   * @maxItems 100
   */
  hosts?: string[];
  /**
   * Whether a host not in hosts is fetched when every address it resolves to is public (global unicast): a link to the internet works, one to loopback, private, shared (CGNAT), link-local (cloud metadata) or other special-purpose addresses is refused. false: only the hosts listed (and the bridge's own server) are fetched from.
   */
  publicHosts: boolean;
}
/**
 * What users write waits in the bridge while the bus cannot store it, and is retried in order, per conversation. Past giveUpAfterMs a room's messages are read again from the room's archive (XEP-0313) once the bus is back; the sender of a direct message, which no archive keeps, is told it was not bridged.
 */

export interface XmppStoreRetry {
  /**
   * Longest pause between two attempts to store a message: once the bus is back, bridging resumes within about this long.
   */
  maxDelayMs: number;
  /**
   * How long a message waits for the bus before the bridge stops holding it (see storeRetry).
   */
  giveUpAfterMs: number;
  /**
   * How many messages of one conversation, and of all direct chats together, the bridge holds while they wait for the bus. Past it, the bridge stops holding a room's messages (see storeRetry), and refuses a direct message with a stanza error asking to send it again.
   */
  maxWaiting: number;
}
/**
 * Where a bridge serves its probes and metrics (GET /healthz, /readyz, /metrics) to the kubelet and Prometheus: never the address it serves its network on, so that neither is reachable from the other's side.
 */
