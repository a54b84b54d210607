/**
 * Which rooms the bridge may bridge: the linked rooms the bot joins, each checked once for whether it may be
 * bridged, and why not; a refused room is told so, once.
 */
import type { Logger } from "../../gateway/platform/log.js";
import type { LinkedConversations } from "../kit/LinkedConversations.js";
import type { BotNotices } from "./BotNotices.js";
import type { MatrixBridgeConfig } from "./config.types.js";
import type { MatrixClient } from "./MatrixClient.js";
import { EventType } from "./matrixEvents.js";
import { serverOf } from "./matrixIds.js";
import {
  ACCESS_RULES_STATE,
  ENCRYPTED_NOTICE,
  ENCRYPTED_REFUSAL,
  foreignRoomRefusal,
  outsiderRefusal,
  refusalOfRoomState,
  type RoomRefusal,
} from "./roomRefusals.js";

export type RoomGuardConfig = Pick<MatrixBridgeConfig, "instance" | "encryption"> & {
  userServers: string[];
  roomServers: string[];
};

export interface RoomGuardDeps {
  client: Pick<MatrixClient, "joinRoom" | "getState" | "getStateEvent">;
  linked: Pick<LinkedConversations, "list">;
  notices: Pick<BotNotices, "sayOnce">;
  log: Logger;
}

export class RoomGuard {
  /** Rooms the bot is in. */
  private readonly botRooms = new Set<string>();
  /** Linked rooms checked for whether they may be bridged, and why not. */
  private readonly checkedRooms = new Map<string, RoomRefusal>();
  /** Each room's m.room.encryption content as last seen, null for a plain room (with encryption enabled). */
  private readonly encryption = new Map<string, Record<string, unknown> | null>();

  constructor(
    private readonly config: RoomGuardConfig,
    private readonly deps: RoomGuardDeps,
  ) {}

  hasBot(room: string): boolean {
    return this.botRooms.has(room);
  }

  botJoined(room: string): void {
    this.botRooms.add(room);
  }

  /** Why a checked room is not bridged; undefined when it is, or was never checked. */
  refusal(room: string): RoomRefusal {
    return this.checkedRooms.get(room);
  }

  /** Notes the room as checked, refused for `refusal` or (undefined) bridged. */
  checked(room: string, refusal: RoomRefusal): void {
    this.checkedRooms.set(room, refusal);
  }

  /** Whether encrypted rooms are bridged: else they are refused. */
  get bridgesEncryptedRooms(): boolean {
    return this.config.encryption.enabled;
  }

  /** Notes that the room turned (or is) encrypted, with the settings of its m.room.encryption. */
  encrypted(room: string, settings: Record<string, unknown>): void {
    this.encryption.set(room, settings);
  }

  /**
   * The room's m.room.encryption content, undefined for a plain room: read from its state once, then kept
   * up to date by the state events the room sends. A room never turns plain again. Read as `asUser`, a
   * member of the room (a ghost in a direct chat, where the bot is not); default the bot.
   */
  async encryptionOf(room: string, asUser?: string): Promise<Record<string, unknown> | undefined> {
    let settings = this.encryption.get(room);
    if (settings === undefined) {
      settings = (await this.deps.client.getState(room, EventType.encryption, "", asUser)) ?? null;
      // An event that came in meanwhile is newer than what was read.
      settings = this.encryption.get(room) ?? settings;
      this.encryption.set(room, settings);
    }
    return settings ?? undefined;
  }

  /** Forgets the room's check: linked again, it is checked again. */
  forget(room: string): void {
    this.checkedRooms.delete(room);
  }

  outsiderRefusal(userId: string): string | undefined {
    return outsiderRefusal(this.config.userServers, userId);
  }

  foreignRoomRefusal(server: string | undefined): RoomRefusal {
    return foreignRoomRefusal(this.config.roomServers, server);
  }

  /** The bot joins every linked room it is not in yet, and checks each one may be bridged. */
  async joinLinkedRooms(): Promise<void> {
    const { client, linked, log } = this.deps;
    for (const { link, endpoint } of linked.list()) {
      const room = endpoint.conversation;
      if ((endpoint.kind ?? "room") !== "room" || this.checkedRooms.has(room)) continue;
      // A room whose id names a server outside roomServers is not joined at all.
      const foreign = this.foreignRoomRefusal(serverOf(room));
      if (foreign !== undefined) {
        this.checkedRooms.set(room, foreign);
        log.warn({ room, link: link.id, refusal: foreign }, "linked room refused; the bot does not join it");
        continue;
      }
      try {
        if (!this.botRooms.has(room)) await client.joinRoom(room);
        this.botRooms.add(room);
        await this.checkLinkedRoom(room);
      } catch (error) {
        log.warn(
          { err: error, room: endpoint.conversation, link: link.id },
          "the bot cannot join a linked room; invite it",
        );
      }
    }
  }

  /** A linked room the bridge may not bridge says so in the room, and stays unbridged. */
  async checkLinkedRoom(room: string): Promise<void> {
    const refusal = await this.refusalOf(room);
    this.checkedRooms.set(room, refusal);
    if (refusal === undefined) return;
    this.deps.log.warn({ room, refusal }, "linked room refused");
    const { notices } = this.deps;
    // Encryption is also told when its state event comes in: one notice, whichever comes first.
    if (refusal === ENCRYPTED_REFUSAL) await notices.sayOnce(room, "encrypted", ENCRYPTED_NOTICE);
    else await notices.sayOnce(room, "refused", `fedgate will not bridge this room: ${refusal}.`);
  }

  /** Why a room may not be bridged, read from the room's state (see refusalOfRoomState). */
  async refusalOf(room: string): Promise<RoomRefusal> {
    const { client } = this.deps;
    const [rules, createEvent, encryption] = await Promise.all([
      client.getState(room, ACCESS_RULES_STATE, ""),
      client.getStateEvent(room, EventType.create, ""),
      client.getState(room, EventType.encryption, ""),
    ]);
    if (encryption !== undefined && this.config.encryption.enabled) {
      this.encryption.set(room, encryption);
      return refusalOfRoomState(this.config.roomServers, room, { rules, createEvent, encryption: undefined });
    }
    return refusalOfRoomState(this.config.roomServers, room, { rules, createEvent, encryption });
  }
}
