/**
 * What a transaction from the homeserver tells the bridge's devices (see cryptoTransaction.ts, which reads
 * it): to-device messages, device list changes, one-time-key counts and unused fallback key types.
 */

type Json = Record<string, unknown>;

/** A to-device message for one of the AS's devices, as /sync would give it to that device. */
export interface ToDeviceMessage {
  toUserId: string;
  toDeviceId: string;
  event: { type: string; sender: string; content: Json };
}

export interface CryptoTransaction {
  toDevice: ToDeviceMessage[];
  deviceLists: { changed: string[]; left: string[] };
  /** user → device → key algorithm → count. */
  oneTimeKeyCounts: Map<string, Map<string, Map<string, number>>>;
  /** user → device → fallback key algorithms not used yet. */
  unusedFallbackKeyTypes: Map<string, Map<string, string[]>>;
}
