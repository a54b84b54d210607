/**
 * Invitations of the bridge's users: the bot joins rooms of roomServers that users of userServers invite it
 * to; a ghost joins only a direct chat a native user opens with it. Any other invitation is declined, with
 * the reason.
 */
import { isTransient, PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { IdentityStore, RemoteUser } from "../../gateway/platform/stores/IdentityStore.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import { openDirectChat } from "../kit/openDirectChat.js";
import type { BotNotices } from "./BotNotices.js";
import { HELP } from "./Commands.js";
import type { MatrixBridgeConfig } from "./config.types.js";
import type { DirectChats } from "./DirectChats.js";
import type { GhostUsers } from "./GhostUsers.js";
import type { MatrixClient } from "./MatrixClient.js";
import { EventType, type MatrixEvent } from "./matrixEvents.js";
import { isRecord } from "../kit/isRecord.js";
import { isUserId, serverOf } from "./matrixIds.js";
import type { MatrixInstance } from "./matrixInstance.js";
import type { RoomGuard } from "./RoomGuard.js";
import type { BridgeDevices } from "./crypto/BridgeDevices.js";

const SHARED_ROOM_REFUSAL =
  "a direct chat is a room of exactly two people, and this room is shared (linked, with the fedgate bot, another chat's, or with someone else invited)";

export interface InvitationsDeps {
  self: MatrixInstance;
  client: Pick<MatrixClient, "joinRoom" | "leaveRoom" | "presentMembers">;
  /** The whole store: a direct chat opened is a link. */
  links: LinkStore;
  identities: Pick<IdentityStore, "remoteFor">;
  guard: Pick<
    RoomGuard,
    "outsiderRefusal" | "foreignRoomRefusal" | "hasBot" | "botJoined" | "checkLinkedRoom" | "encryptionOf"
  >;
  /** The ghosts' devices for encrypted direct chats; only with encryption enabled. */
  devices?: Pick<BridgeDevices, "deviceFor">;
  directChats: Pick<DirectChats, "conversationOf" | "remember">;
  ghosts: Pick<GhostUsers, "arrived">;
  notices: Pick<BotNotices, "say">;
  log: Logger;
}

export class Invitations {
  constructor(
    private readonly config: Pick<MatrixBridgeConfig, "agency">,
    private readonly deps: InvitationsDeps,
  ) {}

  async onInvite(event: MatrixEvent, invitee: string): Promise<void> {
    const { self, client, links, identities, guard, directChats, notices, log } = this.deps;
    const outsider = guard.outsiderRefusal(event.sender);
    if (outsider !== undefined) await this.refuseInvite(event, invitee, outsider);
    if (invitee === self.bot) {
      const foreign = guard.foreignRoomRefusal(roomServerOfInvite(event));
      if (foreign !== undefined) await this.refuseInvite(event, invitee, foreign);
      await client.joinRoom(event.room_id);
      guard.botJoined(event.room_id);
      log.info({ room: event.room_id, by: event.sender }, "bot invited into a room");
      if (links.match(self.ref(event.room_id)) !== undefined) await guard.checkLinkedRoom(event.room_id);
      else await notices.say(event.room_id, HELP);
      return;
    }
    // A ghost invited into a direct chat: the native user opens a chat with the person it stands for.
    if (event.content["is_direct"] !== true)
      await this.refuseInvite(
        event,
        invitee,
        "fedgate's people join rooms only through links; invite them to a direct chat to write to them alone",
      );
    // A room shared with others never becomes a direct chat, whatever the invitation says.
    if (
      guard.hasBot(event.room_id) ||
      (await links.resolve(self.ref(event.room_id))) !== undefined ||
      (await directChats.conversationOf(event.room_id)) !== undefined
    )
      await this.refuseInvite(event, invitee, SHARED_ROOM_REFUSAL);
    const remote = await identities.remoteFor(self.user(invitee));
    if (remote?.agency === undefined)
      await this.refuseInvite(event, invitee, `${invitee} stands for no one fedgate knows`);
    else await this.openDirect(event, { ...remote, agency: remote.agency }, invitee);
  }

  /**
   * Declines an invitation with the reason, which the inviter's client shows, and refuses the event
   * (FG_NATIVE_INVALID, logged). A homeserver's refusal to let the invitee leave is kept as the cause.
   */
  private async refuseInvite(event: MatrixEvent, invitee: string, reason: string): Promise<never> {
    const room = event.room_id;
    let cause: unknown;
    try {
      await this.deps.client.leaveRoom(room, invitee === this.deps.self.bot ? undefined : invitee, reason);
    } catch (error) {
      if (isTransient(error)) throw error;
      cause = error;
    }
    throw new PermanentError("FG_NATIVE_INVALID", `invitation of ${invitee} refused: ${reason}`, {
      detail: { room, invitee, by: event.sender },
      ...(cause === undefined ? {} : { cause }),
    });
  }

  /**
   * The ghost joins the room the native user invited it to, and the room becomes their direct chat: only if
   * no one else is in it or invited to it.
   */
  private async openDirect(
    event: MatrixEvent,
    remote: RemoteUser & { agency: string },
    ghost: string,
  ): Promise<void> {
    const { self, client, links, directChats, ghosts, log } = this.deps;
    const { room_id: room, sender: native } = event;
    await client.joinRoom(room, ghost);
    const others = (await client.presentMembers(room, ghost)).filter((u) => u !== native && u !== ghost);
    if (others.length > 0) await this.refuseInvite(event, ghost, SHARED_ROOM_REFUSAL);
    let conversation: string;
    try {
      conversation = await openDirectChat(links, self.user(native), this.config.agency, remote, log);
    } catch (error) {
      const reason = error instanceof Error ? error.message : "the direct chat cannot be opened";
      await client.leaveRoom(room, ghost, reason).catch((cause: unknown) => {
        log.warn({ err: cause, room, ghost }, "the ghost cannot leave a direct chat it could not open");
      });
      throw error;
    }
    ghosts.arrived(room, ghost);
    await directChats.remember(room, conversation);
    // In an encrypted direct chat only the ghost can read what the native user writes: its device must be
    // there before the first message, whose key goes to the devices the room's members have then.
    const { devices, guard } = this.deps;
    if (devices !== undefined && (await guard.encryptionOf(room, ghost)) !== undefined)
      await devices.deviceFor(ghost);
  }
}

/**
 * The server a room an invitation is for belongs to: the one its id names (the homeserver checks that it is
 * the creator's), or from room version 12 on, whose ids name none, the creator's as the invitation's room
 * state shows it. undefined when neither says.
 */
function roomServerOfInvite(event: MatrixEvent): string | undefined {
  const named = serverOf(event.room_id);
  if (named !== undefined) return named;
  const state = event.unsigned?.["invite_room_state"];
  const create = Array.isArray(state)
    ? (state as unknown[]).find((e) => isRecord(e) && e["type"] === EventType.create)
    : undefined;
  const creator = isRecord(create) ? create["sender"] : undefined;
  return typeof creator === "string" && isUserId(creator) ? serverOf(creator) : undefined;
}
