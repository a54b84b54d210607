/**
 * The ghosts: one Matrix user per remote person, registered and named as who they stand for, and what rooms
 * each is known to be in.
 */
import type { Delivery } from "../../schemas/types.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { IdentityStore } from "../../gateway/platform/stores/IdentityStore.js";
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";
import { BoundedMap } from "../kit/BoundedMap.js";
import { CACHE_SIZE } from "./cacheSize.js";
import { attachmentFetchOptions, fetchFile } from "../kit/fetchAttachment.js";
import { puppetName } from "../kit/puppetName.js";
import type { MatrixAttachments } from "./config.types.js";
import { ghostUserId, isGhost, localpartOf } from "./ghosts.js";
import { matrixErrcode, type MatrixClient } from "./MatrixClient.js";
import type { MatrixInstance } from "./matrixInstance.js";
import type { MatrixContent } from "./toMatrixContent.js";
import { POSTED_MARKER } from "./transactionIds.js";

/** Larger pictures are not given to ghosts: a profile picture needs far less. */
const MAX_AVATAR_BYTES = 1024 * 1024;

export interface GhostUsersConfig {
  attachments: MatrixAttachments & { maxBytes: number };
}

export interface GhostUsersDeps {
  self: MatrixInstance;
  client: Pick<
    MatrixClient,
    | "registerUser"
    | "getProfile"
    | "setDisplayName"
    | "setAvatarUrl"
    | "uploadMedia"
    | "joinRoom"
    | "invite"
    | "leaveRoom"
    | "joinedMembers"
    | "sendEvent"
  >;
  identities: Pick<IdentityStore, "record" | "remoteFor">;
  state: KeyValueStore;
  log: Logger;
}

export class GhostUsers {
  /** Ghosts known to be in a room. */
  private readonly present = new BoundedMap<string, true>(CACHE_SIZE);
  /** Ghost profiles already set: ghost → display name. */
  private readonly profiles = new BoundedMap<string, string>(CACHE_SIZE);

  constructor(
    private readonly config: GhostUsersConfig,
    private readonly deps: GhostUsersDeps,
  ) {}

  /** The ghost of the delivery's sender: registered, named "Name (Agency)", and known as who it stands for. */
  async ghostFor(delivery: Delivery): Promise<string> {
    const { client, self, identities } = this.deps;
    const { event, senderAgency } = delivery;
    const remote = { network: event.source.network, instance: event.source.instance };
    const ghost = ghostUserId(self.naming, { ...remote, userId: event.sender.userId });
    const name = puppetName(delivery);
    const avatar = event.sender.avatarUrl;
    const profile = `${name}\n${avatar ?? ""}`;
    if (this.profiles.get(ghost) !== profile) {
      await client.registerUser(localpartOf(ghost));
      // Setting a name announces it in every room the ghost is in: only when it changed, not on every start.
      if ((await client.getProfile(ghost)).displayname !== name) await client.setDisplayName(ghost, name);
      if (avatar !== undefined) await this.setAvatar(ghost, avatar);
      this.profiles.set(ghost, profile);
    }
    await identities.record(
      {
        ...event.sender,
        ...remote,
        ...(senderAgency === undefined ? {} : { agency: senderAgency.id, agencyName: senderAgency.name }),
      },
      self.user(ghost),
    );
    return ghost;
  }

  /**
   * Gives the ghost the picture its person has elsewhere, once per picture link (remembered across
   * restarts). A picture is a courtesy: one that cannot be fetched is logged, and the message still goes.
   */
  private async setAvatar(ghost: string, url: string): Promise<void> {
    const { client, state } = this.deps;
    const key = `avatar.${keyToken(ghost)}`;
    const entry = await state.get(key);
    if (entry !== undefined && decodeJson(entry.value) === url) return;
    try {
      const limits = attachmentFetchOptions(this.config.attachments);
      const { bytes, mediaType } = await fetchFile(url, {
        ...limits,
        maxBytes: Math.min(limits.maxBytes, MAX_AVATAR_BYTES),
      });
      if (!mediaType.startsWith("image/"))
        throw new PermanentError("FG_ATTACHMENT_INVALID", `the picture is ${mediaType}, not an image`);
      await client.setAvatarUrl(ghost, await client.uploadMedia(bytes, mediaType, "avatar", ghost));
      await state.put(key, encodeJson(url));
    } catch (error) {
      this.deps.log.warn({ err: error, ghost }, "ghost's picture not set");
    }
  }

  /** Whether a user the homeserver asks about is a ghost that stands for someone; registered if so. */
  async exists(userId: string): Promise<boolean> {
    const { client, self, identities } = this.deps;
    if (!isGhost(self.naming, userId)) return false;
    const remote = await identities.remoteFor(self.user(userId));
    if (remote === undefined) return false;
    await client.registerUser(localpartOf(userId));
    return true;
  }

  /** Notes the ghost as in the room (it joined, or opened it). */
  arrived(room: string, ghost: string): void {
    this.present.set(presenceKey(room, ghost), true);
  }

  /** Forgets the ghost is in the room: the next message must join (or be refused) again. */
  departed(room: string, ghost: string): void {
    this.present.delete(presenceKey(room, ghost));
  }

  /**
   * Puts the ghost in the room: it joins, and where the room is invite-only, the bot invites it first.
   * A homeserver's M_FORBIDDEN is the room's policy: a permanent refusal, not something to retry.
   */
  async enter(room: string, ghost: string): Promise<void> {
    const { client } = this.deps;
    const key = presenceKey(room, ghost);
    if (this.present.get(key) !== undefined) return;
    try {
      await client.joinRoom(room, ghost);
    } catch (error) {
      if (matrixErrcode(error) !== "M_FORBIDDEN") throw error;
      await client.invite(room, ghost);
      await client.joinRoom(room, ghost);
    }
    this.present.set(key, true);
  }

  /** The ghost leaves the room, if it is in it. */
  async leave(room: string, ghost: string): Promise<void> {
    if (this.present.get(presenceKey(room, ghost)) !== undefined || (await this.isMember(room, ghost))) {
      await this.deps.client.leaveRoom(room, ghost);
      this.present.delete(presenceKey(room, ghost));
    }
  }

  private async isMember(room: string, user: string): Promise<boolean> {
    return (await this.deps.client.joinedMembers(room)).includes(user);
  }

  /** Sends as the ghost, with the transaction id in the content (see postedBefore). */
  sendAs(ghost: string, room: string, content: MatrixContent, txnId: string): Promise<string> {
    const marked = { ...content.content, [POSTED_MARKER]: txnId };
    return this.asMember(room, ghost, () =>
      this.deps.client.sendEvent(room, content.type, marked, txnId, ghost),
    );
  }

  /**
   * Acts as the ghost in the room. Refused because the ghost is no longer in it (kicked a moment ago, before
   * the homeserver told the bridge), it enters again once and retries; refused again, the refusal stands.
   */
  async asMember<T>(room: string, ghost: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (matrixErrcode(error) !== "M_FORBIDDEN") throw error;
      this.present.delete(presenceKey(room, ghost));
      await this.enter(room, ghost);
      return action();
    }
  }
}

function presenceKey(room: string, ghost: string): string {
  return `${room} ${ghost}`;
}
