/**
 * Both gateways' consent to each conversation this gateway shares with a partner gateway: its own grants,
 * which it signs, and the partner's, as received and verified. A shared conversation flows only while both
 * say granted and neither has expired; either side revoking stops it on that side at once, whether or not
 * the revocation reaches the other.
 *
 * Keys in the fedgate_consents bucket: `consent.<partner>.<conversation>.<ours|theirs>`, each a signed grant.
 * Every replica keeps them in memory (a bucket watch), so the router asks without a round trip.
 */
import type { KeyObject } from "node:crypto";
import type { ConsentGrant, PartnerManifest, SignedConsentGrant } from "../../../schemas/types.js";
import { validateSignedConsentGrant } from "../../../schemas/contract/schemas.js";
import { consents, signGrant, verifyGrant } from "./consentGrant.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import {
  decodeJson,
  encodeJson,
  KeyExistsError,
  type KeyValueStore,
  type KvWatch,
} from "../../platform/bus/KeyValueStore.js";

export type ConsentSide = "ours" | "theirs";

/**
 * pending: one side has granted, the other not yet; active: both have and neither expired; revoked: either
 * side revoked; expired: a grant ran out before being renewed.
 */
export type ConsentState = "pending" | "active" | "revoked" | "expired";

export interface Consent {
  partner: string;
  conversation: string;
  state: ConsentState;
  ours?: ConsentGrant;
  theirs?: ConsentGrant;
}

export interface ConsentStoreOptions {
  /** This gateway's id. */
  self: string;
  /** The key this gateway signs its grants with; without it, it can receive grants but give none. */
  signingKey?: KeyObject;
  /** The partner's manifest as held now (verified, unexpired), or undefined. */
  manifestOf: (partner: string) => PartnerManifest | undefined;
  now?: () => number;
  /** The most shared conversations a partner may hold grants for here (its grants are hostile input). */
  maxPartnerGrants?: number;
}

const MAX_PARTNER_GRANTS = 10_000;

function keyOf(partner: string, conversation: string, side: ConsentSide): string {
  return `consent.${partner}.${conversation}.${side}`;
}

export class ConsentStore {
  private readonly held = new Map<string, SignedConsentGrant>();
  private watcher: KvWatch | undefined;
  private readonly listeners = new Set<(grant: SignedConsentGrant, side: ConsentSide) => void>();

  constructor(
    private readonly kv: KeyValueStore,
    private readonly options: ConsentStoreOptions,
  ) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  async start(): Promise<void> {
    this.watcher = await this.kv.watch((entry) => {
      if (!entry.key.startsWith("consent.")) return;
      if (entry.operation === "DEL") {
        this.held.delete(entry.key);
        return;
      }
      const signed = decodeJson(entry.value) as SignedConsentGrant;
      this.held.set(entry.key, signed);
      const side = entry.key.endsWith(".ours") ? "ours" : "theirs";
      for (const listener of this.listeners) listener(signed, side);
    });
  }

  stop(): void {
    this.watcher?.stop();
  }

  /** Called with every grant stored, by any replica (this gateway's own grants are what it announces). */
  onChange(listener: (grant: SignedConsentGrant, side: ConsentSide) => void): void {
    this.listeners.add(listener);
  }

  private grantOf(partner: string, conversation: string, side: ConsentSide): ConsentGrant | undefined {
    return this.held.get(keyOf(partner, conversation, side))?.grant;
  }

  /** Whether the conversation flows now: both sides granted, neither revoked or expired. */
  isActive(partner: string, conversation: string): boolean {
    const now = this.now();
    return (
      consents(this.grantOf(partner, conversation, "ours"), now) &&
      consents(this.grantOf(partner, conversation, "theirs"), now)
    );
  }

  /** This gateway's own grants, signed, as stored: what it tells its partners. */
  ours(partner?: string): SignedConsentGrant[] {
    return [...this.held.entries()]
      .filter(
        ([key, signed]) =>
          key.endsWith(".ours") && (partner === undefined || signed.grant.partner === partner),
      )
      .map(([, signed]) => signed);
  }

  get(partner: string, conversation: string): Consent | undefined {
    const ours = this.grantOf(partner, conversation, "ours");
    const theirs = this.grantOf(partner, conversation, "theirs");
    if (ours === undefined && theirs === undefined) return undefined;
    const now = this.now();
    const state: ConsentState =
      ours?.state === "revoked" || theirs?.state === "revoked"
        ? "revoked"
        : consents(ours, now) && consents(theirs, now)
          ? "active"
          : [ours, theirs].some((g) => g !== undefined && !consents(g, now))
            ? "expired"
            : "pending";
    return {
      partner,
      conversation,
      state,
      ...(ours === undefined ? {} : { ours }),
      ...(theirs === undefined ? {} : { theirs }),
    };
  }

  list(): Consent[] {
    const pairs = new Set(
      [...this.held.values()].map(({ grant }) =>
        grant.gateway === this.options.self
          ? `${grant.partner} ${grant.conversation}`
          : `${grant.gateway} ${grant.conversation}`,
      ),
    );
    return [...pairs]
      .sort()
      .map((pair) => {
        const [partner, conversation] = pair.split(" ") as [string, string];
        return this.get(partner, conversation);
      })
      .filter((c): c is Consent => c !== undefined);
  }

  /** Signs and stores this gateway's grant (or revocation) of a conversation with a partner. */
  async decide(
    partner: string,
    conversation: string,
    decision: { state: ConsentGrant["state"]; validForMs: number; approvedBy?: string },
  ): Promise<SignedConsentGrant> {
    const { signingKey, self } = this.options;
    if (signingKey === undefined)
      throw new PermanentError(
        "FG_CONFIG_INVALID",
        "this gateway has no federation.signingKey: it cannot sign consent grants",
      );
    const key = keyOf(partner, conversation, "ours");
    for (;;) {
      const entry = await this.kv.get(key);
      const before =
        entry === undefined ? undefined : (decodeJson(entry.value) as SignedConsentGrant).grant.serial;
      const now = this.now();
      const grant: ConsentGrant = {
        gateway: self,
        partner,
        conversation,
        state: decision.state,
        // Strictly higher than the last, even if the clock went back: the partner keeps the highest.
        serial: Math.max(now, (before ?? 0) + 1),
        issuedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + decision.validForMs).toISOString(),
        ...(decision.approvedBy === undefined ? {} : { approvedBy: decision.approvedBy }),
      };
      const signed = signGrant(grant, signingKey);
      try {
        if (entry === undefined) await this.kv.create(key, encodeJson(signed));
        else await this.kv.update(key, encodeJson(signed), entry.revision);
        this.held.set(key, signed);
        return signed;
      } catch (error) {
        // Another replica decided at the same moment: decide again on top of it.
        if (!(error instanceof KeyExistsError)) throw error;
      }
    }
  }

  /**
   * Verifies a grant a partner sent against its manifest and keeps it, if newer than the one held; resolves
   * with it. FG_GRANT_INVALID / FG_GRANT_UNTRUSTED (see verifyGrant), FG_PARTNER_NOT_FOUND (no valid manifest
   * of the sender), FG_GRANT_STALE (not newer), FG_GRANT_INVALID too when the partner already holds grants
   * for maxPartnerGrants other conversations.
   */
  async receive(from: string, document: unknown): Promise<ConsentGrant> {
    const manifest = this.options.manifestOf(from);
    if (manifest === undefined)
      throw new PermanentError(
        "FG_PARTNER_NOT_FOUND",
        `a grant arrived from gateway ${from}, of which no valid manifest is held`,
      );
    const signed = validateSignedConsentGrant(document);
    // The same grant again (partners send theirs every so often): nothing to verify or store.
    const held = this.held.get(keyOf(from, signed.grant.conversation, "theirs"));
    if (held !== undefined && held.signature.value === signed.signature.value) return held.grant;
    const grant = verifyGrant(signed, manifest);
    if (grant.partner !== this.options.self)
      throw new PermanentError(
        "FG_GRANT_UNTRUSTED",
        `gateway ${from}'s grant is addressed to gateway ${grant.partner}, not to this one (${this.options.self})`,
      );
    const key = keyOf(from, grant.conversation, "theirs");
    const limit = this.options.maxPartnerGrants ?? MAX_PARTNER_GRANTS;
    if (!this.held.has(key) && this.partnerGrants(from) >= limit)
      throw new PermanentError(
        "FG_GRANT_INVALID",
        `gateway ${from} already holds grants for ${String(limit)} shared conversations here; a grant for ${grant.conversation} is refused`,
      );
    for (;;) {
      const entry = await this.kv.get(key);
      const before = entry === undefined ? undefined : (decodeJson(entry.value) as SignedConsentGrant).grant;
      if (before !== undefined && before.serial >= grant.serial) {
        if (before.serial === grant.serial) return before;
        throw new PermanentError(
          "FG_GRANT_STALE",
          `gateway ${from}'s grant ${String(grant.serial)} for ${grant.conversation} is older than the one held (${String(before.serial)})`,
        );
      }
      try {
        if (entry === undefined) await this.kv.create(key, encodeJson(document));
        else await this.kv.update(key, encodeJson(document), entry.revision);
        this.held.set(key, document as SignedConsentGrant);
        return grant;
      } catch (error) {
        if (!(error instanceof KeyExistsError)) throw error;
      }
    }
  }

  /** How many shared conversations `partner` holds grants for here. */
  private partnerGrants(partner: string): number {
    const prefix = `consent.${partner}.`;
    let count = 0;
    for (const key of this.held.keys()) if (key.startsWith(prefix) && key.endsWith(".theirs")) count++;
    return count;
  }
}
