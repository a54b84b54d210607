/* Generated from bridges/matrix/config.schema.json by `npm run generate`. Do not edit: change the schema instead. */

import type { ConnectionCheck, StatusListen } from "../../schemas/types.js";

export type ServerName = string;

/**
 * bridges.matrix in the config file: how the Matrix bridge serves its homeserver as an Application Service.
 */

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
   * Homeservers whose users speak for `agency` through the bridge: their messages, reactions and memberships are bridged, they may command the bot and open direct chats with ghosts. Anyone else is refused and told so. Default: [serverName].
   *
   * @minItems 1
   */
  userServers?: [ServerName, ...ServerName[]];
  /**
   * Homeservers whose rooms the bot joins: a room belongs to the server its id names, or for room version 12 and later, whose ids name none, to the server of its creator. The bot refuses invitations into other rooms, and does not join a linked room elsewhere. Default: userServers.
   *
   * @minItems 1
   */
  roomServers?: [ServerName, ...ServerName[]];
  /**
   * The Application Service registration (YAML) the homeserver was given, as `fedgate bridge matrix --generate-registration` writes it. Its tokens are the bridge's secrets; a relative path is read from the config file's folder.
   */
  registrationFile: string;
  listen: MatrixListen;
  /**
   * The base URL other bridges fetch this bridge's file links from; default the registration's url.
   */
  publicUrl?: string;
  /**
   * The agency whose officials use this homeserver. It owns the Matrix side of every direct chat; without it, direct chats are refused. (A room linked by a bot command is owned by the agency its join code names.)
   */
  agency?: string;
  /**
   * Localpart prefix of the bridge's ghosts; must match the registration's user namespace.
   */
  ghostPrefix: string;
  attachments: MatrixAttachments;
  /**
   * Longer message bodies are refused, and the sender told so.
   */
  maxBodyBytes: number;
  status: StatusListen;
  connectionCheck: ConnectionCheck;
  encryption: MatrixEncryption;
}
/**
 * Where the bridge listens for the homeserver's transactions, and serves its files to the other bridges.
 */

export interface MatrixListen {
  host: string;
  port: number;
}

export interface MatrixAttachments {
  /**
   * Larger files are not bridged, in either direction (the policy may allow less).
   */
  maxBytes: number;
  /**
   * Hosts the bridge fetches files from whatever their address: "host" (any port), "host:port" or a URL (its host and port), matched by name as the file links spell them. List where the other networks' file links point when that is not a public address: the other bridges' publicUrl (the chart fills them in), an XMPP server's upload service. The homeserver (homeserverUrl) is trusted for the bridge's own files. Any other host: see publicHosts.
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

export interface MatrixEncryption {
  /**
   * Bridge encrypted rooms: the bot's device decrypts what members write, and each ghost's device encrypts what it says there for the room's members' devices. Needs a homeserver that pushes to-device messages and device lists to the bridge (Synapse: experimental_features msc2409_to_device_messages_enabled and msc3202_transaction_extensions) and a registration with receive_ephemeral, org.matrix.msc3202 and io.element.msc4190 (the generated one has them).
   */
  enabled: boolean;
  /**
   * The name the bot's device shows in Matrix clients' device lists.
   */
  deviceName: string;
  /**
   * Most devices the bridge holds at once (its bot's and its ghosts'); a ghost beyond them cannot speak in encrypted rooms.
   */
  maxDevices: number;
  /**
   * Where the devices' keys and sessions are kept, so that a restart keeps them (relative to this config file's folder): the bridge's devices stay the same and what was encrypted for them stays readable. Needs storeKeyFile. Without it they live in memory, and each start makes new devices.
   */
  storeFile?: string;
  /**
   * A file holding the secret the store is encrypted with (at least 32 characters; a mounted Secret), relative to this config file's folder.
   */
  storeKeyFile?: string;
  /**
   * Encrypt only for devices their owner signed with their cross-signing identity (a new login the official has verified from another of their devices): an unverified device gets no keys, and its client shows why. Off, every device of the room's members gets them.
   */
  onlyCrossSignedDevices: boolean;
}
