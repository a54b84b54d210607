/**
 * One-time join codes: authority over a link, handed to whoever may join a conversation to it. The admin
 * API issues a code per link and endpoint; a room moderator redeems it in the room (`!fedgate link <code>`),
 * and the room joins the link as that endpoint. Power in a room proves nothing about a link: anyone can
 * create a room.
 *
 * Keys in the fedgate_join_codes bucket: `code.<hex SHA-256 of the code>`. The code itself is never stored,
 * so whoever reads the bucket learns no code to redeem; it has 192 random bits, so a digest without salt is
 * enough. A code is consumed by an update against its revision: of two replicas redeeming it at once, one
 * wins. The bucket forgets entries a day after their last write; each code's own expiry is checked here.
 */
import { createHash, randomBytes } from "node:crypto";
import type { JoinCodeRequest } from "../../../schemas/types.js";
import type { Bus } from "../bus/Bus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { isTransient, PermanentError } from "../../../schemas/contract/errors.js";
import type { Logger } from "../log.js";
import { decodeJson, encodeJson, KeyExistsError, type KeyValueStore } from "../bus/KeyValueStore.js";
import { conversationKey, type ConversationRef } from "./LinkStore.js";

/** The longest a code lives, in seconds (join-code-request.schema.json's maximum); the bucket's TTL. */
export const maxJoinCodeTtlSeconds = 86_400;
/** How long a code lives when the request does not say (the schema's default). */
export const defaultJoinCodeTtlSeconds = 3_600;
const minTtlSeconds = 60;

const codePrefix = "fgj_";
/** The prefix and 24 random bytes in base64url: what issue() hands out, and all redeem() reads. */
const codePattern = /^fgj_[A-Za-z0-9_-]{32}$/;

/** What a redeemed code allows: which conversation may join which link, as whose endpoint. */
export interface JoinCodeGrant {
  /** A short digest of the code, for log lines: ties an issue to its use, and reveals nothing of the code. */
  codeId: string;
  linkId: string;
  network: string;
  instance: string;
  agency: string;
  /** The only conversation that may redeem the code; without it, any of the network instance. */
  conversation?: string;
  issuedAt: string;
  expiresAt: string;
}

/** A code as issued: the code itself is in this answer and nowhere else. */
export interface IssuedJoinCode extends JoinCodeGrant {
  code: string;
}

interface StoredCode extends Omit<JoinCodeGrant, "codeId"> {
  /** Set once redeemed, with the conversation that redeemed it. */
  usedAt?: string;
  usedBy?: string;
}

/** Why a code was refused, for the log; the person who typed it hears the same words whatever the reason. */
type Refusal = "malformed" | "unknown" | "used" | "expired" | "other-conversation";

function digest(code: string): string {
  return createHash("sha256").update(code, "utf8").digest("hex");
}

/** Whether text has the form of a join code (and so is worth looking up). */
export function isJoinCodeShaped(text: string): boolean {
  return codePattern.test(text);
}

function refused(reason: Refusal, codeId?: string): PermanentError {
  return new PermanentError(
    "FG_JOIN_CODE_INVALID",
    "the join code is unknown, expired, used already, or issued for another conversation",
    { detail: { reason, ...(codeId === undefined ? {} : { codeId }) } },
  );
}

export class JoinCodeStore {
  constructor(
    private readonly kv: KeyValueStore,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The store on the bus's fedgate_join_codes bucket, whose entries expire after the longest a code lives. */
  static async open(bus: Bus, log: Logger): Promise<JoinCodeStore> {
    const kv = await bus.keyValue(buckets.joinCodes, { ttlMs: maxJoinCodeTtlSeconds * 1000 });
    return new JoinCodeStore(kv, log);
  }

  /**
   * A new code for `linkId` and the endpoint the request describes. The caller checks that the link exists,
   * may take the endpoint and that the agency is declared. Throws FG_REQUEST_INVALID for a lifetime outside
   * one minute to one day.
   */
  async issue(linkId: string, request: JoinCodeRequest): Promise<IssuedJoinCode> {
    const ttlSeconds = request.ttlSeconds ?? defaultJoinCodeTtlSeconds;
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < minTtlSeconds || ttlSeconds > maxJoinCodeTtlSeconds)
      throw new PermanentError(
        "FG_REQUEST_INVALID",
        `a join code lives ${String(minTtlSeconds)} to ${String(maxJoinCodeTtlSeconds)} seconds, not ${String(ttlSeconds)}`,
      );
    const code = `${codePrefix}${randomBytes(24).toString("base64url")}`;
    const now = this.now();
    const stored: StoredCode = {
      linkId,
      network: request.network,
      instance: request.instance,
      agency: request.agency,
      ...(request.conversation === undefined ? {} : { conversation: request.conversation }),
      issuedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + ttlSeconds * 1000).toISOString(),
    };
    const key = digest(code);
    await this.kv.create(`code.${key}`, encodeJson(stored));
    return { code, codeId: key.slice(0, 12), ...stored };
  }

  /**
   * Consumes the code for conversation `where` and runs `use` with what it grants (joining the link). When
   * `use` fails, the code is given back, so that a refusal or a passing failure does not waste it. Throws
   * FG_JOIN_CODE_INVALID, with the same message whatever the reason (the reason is in `detail`), for a code
   * that is malformed, unknown, expired, used already or bound to another conversation; otherwise what `use`
   * throws.
   */
  async redeem<T>(
    code: string,
    where: ConversationRef,
    use: (grant: JoinCodeGrant) => Promise<T>,
  ): Promise<T> {
    if (!isJoinCodeShaped(code)) throw refused("malformed");
    const hash = digest(code);
    const codeId = hash.slice(0, 12);
    const key = `code.${hash}`;
    const entry = await this.kv.get(key);
    if (entry === undefined) throw refused("unknown", codeId);
    const stored = decodeJson(entry.value) as StoredCode;
    if (stored.usedAt !== undefined) throw refused("used", codeId);
    if (this.now() >= Date.parse(stored.expiresAt)) throw refused("expired", codeId);
    if (
      stored.network !== where.network ||
      stored.instance !== where.instance ||
      (stored.conversation !== undefined && stored.conversation !== where.conversation)
    )
      throw refused("other-conversation", codeId);
    const used: StoredCode = {
      ...stored,
      usedAt: new Date(this.now()).toISOString(),
      usedBy: conversationKey(where),
    };
    let revision: number;
    try {
      revision = await this.kv.update(key, encodeJson(used), entry.revision);
    } catch (error) {
      // Another replica redeemed it between our read and our write.
      if (error instanceof KeyExistsError) throw refused("used", codeId);
      throw error;
    }
    const { usedAt: _usedAt, usedBy: _usedBy, ...grant } = stored;
    try {
      return await use({ codeId, ...grant });
    } catch (error) {
      await this.kv.update(key, encodeJson(stored), revision).catch((cause: unknown) => {
        // The code stays used; the person is told why their command failed, and can ask for a new code.
        this.log.warn(
          { err: cause, codeId, transient: isTransient(cause) },
          "a join code whose use failed could not be given back",
        );
      });
      throw error;
    }
  }
}
