/**
 * The partner gateways this gateway knows, each by the newest manifest of it that a trusted authority
 * signed. A manifest replaces the one held only with a higher version: a replayed older manifest (one that
 * granted more) or another manifest under the same version is refused. The signed document is what is kept,
 * and it is verified again when read, so a manifest that expired since is not used.
 *
 * Keys in the fedgate_partners bucket: `partner.<gateway id>`. Started, the store keeps the verified
 * manifests in memory (a bucket watch), for the router to ask per event without a round trip.
 */
import type { KeyObject } from "node:crypto";
import type { PartnerManifest } from "../../../schemas/types.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { verifyManifest } from "./partnerManifest.js";
import {
  decodeJson,
  encodeJson,
  KeyExistsError,
  keyToken,
  type KeyValueStore,
  type KvWatch,
} from "../../platform/bus/KeyValueStore.js";

export interface PartnerManifestStoreOptions {
  /** The issuing authorities' public keys this gateway trusts. */
  authorities: readonly KeyObject[];
  now?: () => Date;
}

export class PartnerManifestStore {
  private readonly verified = new Map<string, PartnerManifest>();
  private watcher: KvWatch | undefined;

  constructor(
    private readonly kv: KeyValueStore,
    private readonly options: PartnerManifestStoreOptions,
  ) {}

  async start(): Promise<void> {
    // Kept by bucket key, as get() finds them: nothing is read back out of a key.
    this.watcher = await this.kv.watch((entry) => {
      if (!entry.key.startsWith("partner.")) return;
      if (entry.operation === "DEL") {
        this.verified.delete(entry.key);
        return;
      }
      try {
        this.verified.set(entry.key, this.verify(decodeJson(entry.value)));
      } catch {
        // Expired (or no longer trusted) since it was stored: as if none were held.
        this.verified.delete(entry.key);
      }
    });
  }

  stop(): void {
    this.watcher?.stop();
  }

  /** The manifest held for a partner gateway, if it is still valid now; from memory (see start). */
  current(gateway: string): PartnerManifest | undefined {
    const manifest = this.verified.get(this.key(gateway));
    const now = this.options.now?.().getTime() ?? Date.now();
    return manifest !== undefined && Date.parse(manifest.expiresAt) > now ? manifest : undefined;
  }

  private verify(document: unknown): PartnerManifest {
    return verifyManifest(document, { authorities: this.options.authorities, now: this.options.now?.() });
  }

  private key(gateway: string): string {
    return `partner.${keyToken(gateway)}`;
  }

  /**
   * Verifies a signed manifest and keeps it as its gateway's; resolves with the manifest. The same document
   * again is accepted as it is. Refused as FG_MANIFEST_* (see verifyManifest), or FG_MANIFEST_STALE.
   */
  async accept(document: unknown): Promise<PartnerManifest> {
    const manifest = this.verify(document);
    const key = this.key(manifest.gateway.id);
    for (;;) {
      const held = await this.kv.get(key);
      try {
        if (held === undefined) {
          await this.kv.create(key, encodeJson(document));
          return manifest;
        }
        const before = (decodeJson(held.value) as { manifest: PartnerManifest }).manifest;
        if (before.version === manifest.version && JSON.stringify(before) === JSON.stringify(manifest))
          return manifest;
        if (before.version >= manifest.version)
          throw new PermanentError(
            "FG_MANIFEST_STALE",
            `gateway ${manifest.gateway.id}'s manifest version ${String(manifest.version)} does not replace the version ${String(before.version)} held${before.version === manifest.version ? " (same version, other content: raise the version)" : ""}`,
            { detail: { gateway: manifest.gateway.id, held: before.version, offered: manifest.version } },
          );
        await this.kv.update(key, encodeJson(document), held.revision);
        return manifest;
      } catch (error) {
        // Another replica wrote the same gateway's manifest at the same moment: compare with what it wrote.
        if (!(error instanceof KeyExistsError)) throw error;
      }
    }
  }

  /** The manifest held for a partner gateway, verified again now; undefined when none is held. */
  async get(gateway: string): Promise<PartnerManifest | undefined> {
    const held = await this.kv.get(this.key(gateway));
    return held === undefined ? undefined : this.verify(decodeJson(held.value));
  }
}
