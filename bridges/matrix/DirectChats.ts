/**
 * Direct chats: a room a native user opened with one ghost is their direct conversation with the person the
 * ghost stands for. Remembered both ways across restarts: its events belong to the conversation, deliveries
 * go to the room.
 */
import { parseDirectConversation } from "../../schemas/contract/directConversations.js";
import { isTransient, PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import { BoundedMap } from "../kit/BoundedMap.js";
import { CACHE_SIZE } from "./cacheSize.js";
import type { DirectChatStore } from "./DirectChatStore.js";
import type { GhostUsers } from "./GhostUsers.js";
import { ghostUserId } from "./ghosts.js";
import type { MatrixClient } from "./MatrixClient.js";
import { EventType, MsgType, type MatrixEvent } from "./matrixEvents.js";
import type { MatrixInstance } from "./matrixInstance.js";
import type { RoomGuard } from "./RoomGuard.js";
import { txnIdFor } from "./transactionIds.js";

const DIRECT_ENDED_NOTICE =
  "Someone else was invited to this room, so it is no longer a private chat: fedgate stopped bridging it. Start a new direct chat to write privately again.";

export interface DirectChatsDeps {
  self: MatrixInstance;
  client: Pick<MatrixClient, "createRoom" | "sendEvent" | "leaveRoom">;
  links: Pick<LinkStore, "match">;
  guard: Pick<RoomGuard, "hasBot">;
  ghosts: Pick<GhostUsers, "arrived" | "departed">;
  store: DirectChatStore;
  log: Logger;
}

export class DirectChats {
  /** Which rooms are direct chats, and of which conversation (null: not one). */
  private readonly directRooms = new BoundedMap<string, string | null>(CACHE_SIZE);

  constructor(private readonly deps: DirectChatsDeps) {}

  /** A direct chat's room, both ways: its events belong to the conversation, deliveries go to the room. */
  async remember(room: string, conversation: string): Promise<void> {
    await this.deps.store.remember(room, conversation);
    this.directRooms.set(room, conversation);
  }

  /**
   * The direct conversation a room is, if it is one. Asked for every event, so kept in memory: a room
   * becomes a direct chat only through remember, which updates the memory too.
   */
  async conversationOf(room: string): Promise<string | undefined> {
    // Remembered before this check existed, a shared room may still be mapped: it is not a direct chat.
    if (this.isSharedRoom(room)) return undefined;
    let known = this.directRooms.get(room);
    if (known === undefined) {
      known = (await this.deps.store.conversationOf(room)) ?? null;
      this.directRooms.set(room, known);
    }
    return known ?? undefined;
  }

  /** The direct chat's room a delivery goes to, opened by the ghost if new. */
  async roomOf(conversation: string, ghost: string | undefined): Promise<string> {
    const { client, ghosts, store, log } = this.deps;
    const remembered = await store.roomOf(conversation);
    // A shared room is never a direct chat's, however it came to be remembered as one: a new room is opened.
    if (remembered !== undefined && !this.isSharedRoom(remembered)) return remembered;
    const direct = parseDirectConversation(conversation);
    if (direct === undefined || !direct.participant.startsWith("@") || ghost === undefined)
      throw new PermanentError("FG_EVENT_INVALID", `${conversation} is not a direct chat of this server`);
    const room = await client.createRoom(
      { is_direct: true, invite: [direct.participant], preset: "trusted_private_chat" },
      ghost,
    );
    ghosts.arrived(room, ghost);
    await this.remember(room, conversation);
    log.info({ room, participant: direct.participant }, "direct chat room opened by a ghost");
    return room;
  }

  /**
   * A third person invited to or joining a direct chat's room ends it: the ghost says so and leaves, and the
   * room is no longer the chat's (the next message opens a new one). True when the event did that.
   */
  async endedByNewcomer(event: MatrixEvent, conversation: string): Promise<boolean> {
    const { client, ghosts, store, log } = this.deps;
    const membership = event.content["membership"];
    if (event.type !== EventType.member || (membership !== "invite" && membership !== "join")) return false;
    const newcomer = event.state_key ?? "";
    const ghost = this.ghostOf(conversation);
    if (newcomer === parseDirectConversation(conversation)?.participant || newcomer === ghost) return false;
    const room = event.room_id;
    log.warn({ room, newcomer }, "a third person entered a direct chat's room; it is no longer bridged");
    if (ghost !== undefined) {
      try {
        await client.sendEvent(
          room,
          EventType.message,
          { msgtype: MsgType.notice, body: DIRECT_ENDED_NOTICE },
          txnIdFor(`direct chat ended ${room}`, 0),
          ghost,
        );
        await client.leaveRoom(room, ghost, DIRECT_ENDED_NOTICE);
      } catch (error) {
        // Passing: the homeserver retries the transaction, and the room is still the chat's till then.
        if (isTransient(error)) throw error;
        log.warn({ err: error, room, ghost }, "the ghost cannot leave a direct chat that ended");
      }
      ghosts.departed(room, ghost);
    }
    await store.forget(room, conversation);
    this.directRooms.set(room, null);
    return true;
  }

  /** The ghost of the remote person of a direct conversation. */
  private ghostOf(conversation: string): string | undefined {
    const direct = parseDirectConversation(conversation);
    return direct === undefined ? undefined : ghostUserId(this.deps.self.naming, direct.peer);
  }

  /** Whether a room is shared with others: linked as a room, or with the bot in it. Never a direct chat. */
  private isSharedRoom(room: string): boolean {
    const { guard, links, self } = this.deps;
    return guard.hasBot(room) || links.match(self.ref(room)) !== undefined;
  }
}
