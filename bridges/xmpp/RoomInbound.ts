/** What native occupants of the linked rooms write, and their coming and going, published in the room's order. */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { PermanentError, TransientError } from "../../schemas/contract/errors.js";
import type { AdapterRuntime } from "../kit/AdapterRuntime.js";
import type { InputQueue } from "../kit/InputQueue.js";
import { NotStoredError } from "../kit/untilStored.js";
import { boundedId } from "./boundedId.js";
import type { XmppBridgeConfig } from "./config.types.js";
import { isPostedByBridge } from "./deliveryIds.js";
import { bareJid, isAllowedUser, splitOccupant } from "./jids.js";
import { occupantSender, type MucRooms, type Occupant } from "./MucRooms.js";
import type { NativeChat, NativePublisher } from "./NativePublisher.js";
import type { RecentMessages } from "./RecentMessages.js";
import type { Refusals } from "./refusals.js";
import type { RoomArchive } from "./RoomArchive.js";
import type { RoomCatchUp } from "./RoomCatchUp.js";
import type { RoomEchoes } from "./RoomEchoes.js";
import type { Stored } from "./stored.js";
import { idsOf, isModeration, moderatorOf, occupantIdOf, stanzaIdOf } from "./toNormalisedEvent.js";
import type { XmlElement } from "./XmppComponent.js";

export interface RoomInboundDeps {
  config: Pick<XmppBridgeConfig, "instance" | "userDomains">;
  /** How many of a room's messages may wait for the bus (storeRetry.maxWaiting). */
  maxWaiting: number;
  botJid: string;
  rooms: Pick<MucRooms, "knows" | "occupant" | "isOwnNick">;
  archive: Pick<RoomArchive, "answerIn">;
  echoes: Pick<RoomEchoes, "heard">;
  catchUp: Pick<RoomCatchUp, "isBehind" | "fallBehind" | "leaveToArchive" | "markBridged">;
  /** Each room's queue of messages to bridge, live or archived. */
  perRoom: InputQueue;
  stored: Stored;
  publisher: Pick<NativePublisher, "publish">;
  refusals: Pick<Refusals, "refuseOnce">;
  recent: Pick<RecentMessages, "rememberText">;
  runtime: Pick<AdapterRuntime, "publish" | "newEventId">;
  log: Logger;
}

export class RoomInbound {
  constructor(private readonly deps: RoomInboundDeps) {}

  /** A live group chat message, queued per room, or one from a room's archive, kept for the catch-up. */
  receive(stanza: XmlElement): void {
    const { archive, catchUp, perRoom, log } = this.deps;
    const answer = archive.answerIn(stanza);
    const archived = answer?.message;
    const message = archived ?? stanza;
    if (message.attrs["type"] !== "groupchat") return;
    const [roomJid, occupantNick] = splitOccupant(message.attrs["from"]);
    // A moderator's retraction comes from the room itself and names the moderator.
    const nick = occupantNick ?? splitOccupant(moderatorOf(message))[1];
    if (roomJid === undefined || nick === undefined) return;
    if (archived === undefined && stanza.attrs["to"] !== this.deps.botJid) {
      // The room sends every message to each of fedgate's occupants (bot and puppets): read the bot's copy
      // only, except to learn the stanza-id of what a puppet just sent.
      this.deps.echoes.heard(stanza, roomJid);
      return;
    }
    if (answer !== undefined) {
      // Only the catch-up asks the archive: its page is bridged in order once complete.
      answer.keep(nick);
      return;
    }
    if (catchUp.isBehind(roomJid)) {
      catchUp.leaveToArchive(roomJid, message);
      return;
    }
    const queued = perRoom.offer(roomJid, async () => {
      // The room fell behind after this was queued: the catch-up queued behind it reads it from the archive.
      if (catchUp.isBehind(roomJid)) {
        catchUp.leaveToArchive(roomJid, message);
        return;
      }
      await this.bridge(message, roomJid, nick).catch((error: unknown) => {
        if (error instanceof NotStoredError) catchUp.fallBehind(roomJid, error);
        else log.error({ err: error, room: roomJid }, "cannot bridge a message");
      });
    });
    if (!queued) {
      catchUp.fallBehind(
        roomJid,
        new TransientError(
          "FG_BUS_UNAVAILABLE",
          `${this.deps.maxWaiting} messages of ${roomJid} wait for the bus already`,
        ),
      );
      catchUp.leaveToArchive(roomJid, message);
    }
  }

  /**
   * Bridges a room's message, live or from its archive, retrying while the bus cannot store it; then moves
   * the room's catch-up point past it. Refused input is passed over, its sender told. Throws NotStoredError
   * when the bus did not store it in time: then the catch-up point stays, and the archive gives it again.
   */
  async bridge(
    stanza: XmlElement,
    roomJid: string,
    nick: string,
    archiveId?: string,
    archivedJid?: string,
  ): Promise<void> {
    const { rooms, catchUp, stored, config } = this.deps;
    const known = rooms.knows(roomJid);
    const occupant = rooms.occupant(roomJid, nick);
    const refusal = { from: this.deps.botJid, to: occupant.jid ?? `${roomJid}/${nick}` };
    // Where catching up resumes: past this message, bridged or refused.
    let stanzaId: string | undefined;
    try {
      stanzaId = stanzaIdOf(stanza, roomJid) ?? boundedId(archiveId, "the archive's id");
      if (stanzaId !== undefined)
        this.deps.recent.rememberText(roomJid, stanzaId, stanza, nick, `${roomJid}/${nick}`);
      const ids = idsOf(stanza, roomJid);
      if (!known || rooms.isOwnNick(roomJid, nick) || isPostedByBridge(ids.originId)) {
        await stored(() => catchUp.markBridged(roomJid, stanzaId), { room: roomJid });
        return;
      }
      const occupantId = occupantIdOf(stanza);
      const chat: NativeChat = {
        conversation: roomJid,
        sender: occupantSender(roomJid, nick, {
          ...occupant,
          ...(occupantId === undefined ? {} : { occupantId }),
        }),
        refusal,
        dedupeId: stanzaId,
        onceId: randomUUID(),
        ids: { ...ids, ...(stanzaId === undefined ? {} : { stanzaId }) },
        moderated: isModeration(stanza, roomJid),
      };
      // The archive's word only ever refuses: what a message carries must not vouch for its sender.
      if (
        !isAllowedUser(occupant.jid, config.userDomains) ||
        !isAllowedUser(archivedJid, config.userDomains)
      ) {
        throw new PermanentError(
          "FG_NATIVE_INVALID",
          `${bareJid(occupant.jid ?? archivedJid ?? nick)} is outside the configured user domains`,
          { detail: { condition: "forbidden" } },
        );
      }
      await stored(() => this.deps.publisher.publish(stanza, chat), { room: roomJid, stanzaId });
    } catch (error) {
      if (error instanceof NotStoredError) throw error;
      await this.deps.refusals.refuseOnce(stanza, refusal, error);
    }
    await stored(() => catchUp.markBridged(roomJid, stanzaId), { room: roomJid });
  }

  /** Publishes a native occupant's coming or going, queued behind the room's messages. */
  publishMembership(
    type: "member.joined" | "member.left",
    room: string,
    nick: string,
    occupant: Occupant,
  ): void {
    const { runtime, config, log } = this.deps;
    if (!isAllowedUser(occupant.jid, config.userDomains)) return;
    // One id, so that a retry is the same event.
    const event = {
      specVersion: "1" as const,
      id: runtime.newEventId(),
      type,
      source: { network: "xmpp", instance: config.instance, conversation: room },
      sender: occupantSender(room, nick, occupant),
      timestamp: new Date().toISOString(),
    };
    // No archive keeps who came and went: what the bus does not store in time is lost, and logged.
    const lost = (error: unknown): void =>
      log.error({ err: error, room, type }, "membership change not bridged: the bus did not store it");
    const queued = this.deps.perRoom.offer(room, () =>
      this.deps.stored(() => runtime.publish(event), { room, type }).catch(lost),
    );
    if (!queued)
      lost(
        new TransientError("FG_BUS_UNAVAILABLE", `${this.deps.maxWaiting} messages of ${room} wait already`),
      );
  }
}
