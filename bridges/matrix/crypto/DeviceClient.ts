/**
 * What the bridge's devices need of the homeserver: to be made (MSC4190), and to call the end-to-end
 * encryption API and send room events as themselves (MSC3202 device masquerading). MatrixClient is one.
 */

type Json = Record<string, unknown>;

/** The client-server API paths of end-to-end encryption a device calls (see deviceRequest). */
export type DeviceRequestPath =
  | "/_matrix/client/v3/keys/upload"
  | "/_matrix/client/v3/keys/query"
  | "/_matrix/client/v3/keys/claim"
  | "/_matrix/client/v3/keys/signatures/upload"
  | "/_matrix/client/v3/keys/device_signing/upload"
  | `/_matrix/client/v3/sendToDevice/${string}/${string}`;

/** A device of a user of the appservice's namespace. */
export interface DeviceOwner {
  userId: string;
  deviceId: string;
}

export interface DeviceClient {
  /** Creates the device, or renames it; whether it was created. */
  upsertDevice(deviceId: string, displayName: string, asUser?: string): Promise<boolean>;
  /** One request of the encryption API as the device; the answer's JSON object. */
  deviceRequest(
    method: "POST" | "PUT",
    path: DeviceRequestPath,
    body: Json,
    device: DeviceOwner,
  ): Promise<Json>;
  /** Sends a room event as the device; its event id. */
  sendEventAsDevice(
    roomId: string,
    type: string,
    content: Json,
    txnId: string,
    device: DeviceOwner,
  ): Promise<string>;
}
