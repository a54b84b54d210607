/* Generated from bridges/matrix/config.schema.json by `npm run generate`. Do not edit: change the schema instead. */

export interface MatrixBridgeConfig {
  /**
   * The network instance this homeserver is, as links and the policy name it (e.g. tchap).
   */
  instance: string;
  /**
   * Where the bridge reaches the homeserver's client-server API, e.g. http://synapse:8008.
   */
  homeserverUrl: string;
  /**
   * The homeserver's name, the part after the colon in user IDs (e.g. tchap.gouv.fr).
   */
  serverName: string;
  /**
   * The Application Service registration (YAML) the homeserver was given, as `fedgate bridge matrix --generate-registration` writes it. Its tokens are the bridge's secrets; a relative path is read from the config file's folder.
   */
  registrationFile: string;
  listen?: MatrixListen;
  /**
   * The base URL other bridges fetch this bridge's file links from; default the registration's url.
   */
  publicUrl?: string;
  /**
   * The agency whose officials use this homeserver. It owns the Matrix side of rooms linked by a bot command and of every direct chat; without it, both are refused.
   */
  agency?: string;
  /**
   * Localpart prefix of the bridge's ghosts; must match the registration's user namespace.
   */
  ghostPrefix?: string;
  attachments?: MatrixAttachments;
  /**
   * Longer message bodies are refused, and the sender told so.
   */
  maxBodyBytes?: number;
}
/**
 * Where the bridge listens for the homeserver's transactions, and serves its files to the other bridges.
 */

export interface MatrixListen {
  host?: string;
  port?: number;
}

export interface MatrixAttachments {
  /**
   * Larger files are not bridged, in either direction (the policy may allow less).
   */
  maxBytes?: number;
  /**
   * Hosts (host or host:port) that other networks' file links may point at. Without it any host is fetched: set it in production.
   */
  hosts?: string[];
  /**
   * How long, in seconds, a file link the bridge hands out to the other bridges stays valid: between half of this and all of it (links made meanwhile are the same, so a person's picture is not fetched again for each message). A link past its expiry is refused with HTTP 410. Keep it above the longest a delivery may wait (a bridge down, retries).
   */
  linkLifetimeSeconds?: number;
}
