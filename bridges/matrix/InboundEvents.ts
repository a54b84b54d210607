/**
 * Inbound: the homeserver's events, one at a time in order. What officials write in linked rooms and direct
 * chats is published on the bus; invitations, bot commands, markings and encryption are dealt with here;
 * everything else is refused, and a bridged room is told why.
 */
import type { MatrixBridgeConfig } from "./config.types.js";
import type { NormalisedEvent } from "../../schemas/types.js";
import { parseDirectConversation } from "../../schemas/contract/directConversations.js";
import { FedgateError, isTransient, PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import type { AdapterRuntime } from "../kit/AdapterRuntime.js";
import type { BotNotices } from "./BotNotices.js";
import { isCommand, type Commands } from "./Commands.js";
import type { DirectChats } from "./DirectChats.js";
import type { GhostUsers } from "./GhostUsers.js";
import type { Invitations } from "./Invitations.js";
import { matrixErrcode } from "./MatrixClient.js";
import { EventType, parseMatrixEvent, type MatrixEvent } from "./matrixEvents.js";
import { isRecord } from "../kit/isRecord.js";
import { isEventId, loggableId } from "./matrixIds.js";
import { NETWORK, type MatrixInstance } from "./matrixInstance.js";
import type { MediaLinks } from "./MediaLinks.js";
import type { NativeUsers } from "./NativeUsers.js";
import type { ReactionStore, ReceivedReaction } from "./ReactionStore.js";
import type { RoomGuard } from "./RoomGuard.js";
import type { RoomMarkings } from "./RoomMarkings.js";
import { ENCRYPTED_NOTICE, ENCRYPTED_REFUSAL } from "./roomRefusals.js";
import type { SkippedEvents } from "./SkippedEvents.js";
import type { DecryptedEvent } from "./crypto/BridgeCrypto.js";
import type { ParkedEvents, RoomKey } from "./crypto/ParkedEvents.js";
import { toNormalisedEvent } from "./toNormalisedEvent.js";

export interface InboundEventsDeps {
  self: MatrixInstance;
  runtime: Pick<AdapterRuntime, "messages" | "eventIdOf" | "publish">;
  links: Pick<LinkStore, "resolve">;
  /** What the homeserver never sent of linked rooms' timelines. */
  skipped: Pick<SkippedEvents, "before" | "handled">;
  guard: Pick<
    RoomGuard,
    "refusal" | "checked" | "hasBot" | "outsiderRefusal" | "bridgesEncryptedRooms" | "encrypted"
  >;
  /** The clear event inside an encrypted one (see BridgeCrypto); only with encryption enabled. */
  decrypt?: (roomId: string, event: Record<string, unknown>) => Promise<DecryptedEvent>;
  /** Encrypted events that came before their keys; with decrypt. */
  parked?: ParkedEvents;
  /** Told of an encrypted event the bridge cannot read, as the homeserver sent it: it is dead-lettered. */
  undecryptable?: (raw: unknown, error: Error) => Promise<void>;
  directChats: Pick<DirectChats, "conversationOf" | "endedByNewcomer">;
  invitations: Pick<Invitations, "onInvite">;
  commands: Pick<Commands, "onCommand">;
  markings: Pick<RoomMarkings, "onMarkingChanged" | "roomMarkingOf">;
  ghosts: Pick<GhostUsers, "departed">;
  natives: Pick<NativeUsers, "senderOf">;
  media: Pick<MediaLinks, "describeMedia">;
  reactions: ReactionStore;
  notices: Pick<BotNotices, "say" | "sayOnce">;
  log: Logger;
}

export class InboundEvents {
  /** A passing failure left waiting events whose keys came: tried again before the next keys are. */
  private retryDue = false;

  constructor(
    private readonly config: Pick<MatrixBridgeConfig, "instance"> & { maxBodyBytes: number },
    private readonly deps: InboundEventsDeps,
  ) {}

  /**
   * One transaction, event by event in order. Bad input is logged and skipped, so the homeserver does not
   * retry it forever; a passing failure (the bus, the homeserver) fails the transaction, which the
   * homeserver then retries whole: what was published already is found by its derived event id.
   */
  async onTransaction(events: readonly unknown[]): Promise<void> {
    for (const raw of events) await this.handle(raw, true);
  }

  /**
   * The encrypted events that waited for these room keys, handled now, in the order they came. One that
   * still cannot be decrypted is not bridged, and waits no more. A passing failure gives back what was not
   * handled yet, to be tried again before the next keys are.
   */
  async onRoomKeys(keys: readonly RoomKey[]): Promise<void> {
    const { parked } = this.deps;
    if (parked === undefined) return;
    if (this.retryDue) {
      this.retryDue = false;
      await this.onKeysAtHand();
    }
    if (keys.length === 0) return;
    const taken = await parked.take(keys);
    for (const [index, event] of taken.entries()) {
      try {
        await this.handle(event.raw, false, false);
      } catch (error) {
        for (const notHandled of taken.slice(index)) notHandled.giveBack();
        this.retryDue = true;
        throw error;
      }
      await event.forget();
    }
  }

  /**
   * The waiting events whose keys the bridge holds already: those that came while a passing failure stopped
   * their handling, or before the bridge was stopped (it keeps both the keys and the events across a restart).
   */
  async onKeysAtHand(): Promise<void> {
    const { parked, decrypt } = this.deps;
    if (parked === undefined || decrypt === undefined) return;
    const atHand: RoomKey[] = [];
    for (const { key, first } of parked.waitingFor()) {
      if (!isRecord(first)) continue;
      try {
        await decrypt(key.roomId, first);
        atHand.push(key);
      } catch {
        // Still no key: it goes on waiting, within its bounds.
      }
    }
    await this.onRoomKeys(atHand);
  }

  /**
   * One event of the room's timeline, and first, when `lookBack`, those before it the homeserver never sent
   * (see SkippedEvents). A native user's event, once handled, bridged or refused, is the room's latest.
   */
  private async handle(raw: unknown, lookBack: boolean, mayWait = true): Promise<void> {
    const { self, skipped, log } = this.deps;
    const { room_id: room, event_id: eventId, sender } = isRecord(raw) ? raw : {};
    const native =
      typeof room === "string" &&
      typeof eventId === "string" &&
      isEventId(eventId) &&
      typeof sender === "string" &&
      !self.isBridgeUser(sender);
    try {
      await this.onEvent(raw, lookBack, mayWait);
    } catch (error) {
      if (error instanceof FedgateError && error.transient) throw error;
      const ids = eventIds(raw);
      if (error instanceof FedgateError) {
        log.warn({ err: error, ...ids }, "Matrix event not bridged");
        if (error.code === "FG_NATIVE_INVALID") await this.explain(raw, error);
        if (error.code === "FG_NATIVE_UNDECRYPTABLE") await this.notDecrypted(raw, error);
      } else {
        log.error({ err: error, ...ids }, "Matrix event not bridged: unexpected failure");
      }
    }
    if (native) await skipped.handled(room, eventId);
  }

  /**
   * The events before a native user's the homeserver skipped, in a linked room (elsewhere none matters);
   * none when the room cannot be read back for good.
   */
  private async skippedBefore(event: MatrixEvent): Promise<unknown[]> {
    const { self, links, skipped, directChats, log } = this.deps;
    const room = event.room_id;
    const direct = await directChats.conversationOf(room);
    if ((await links.resolve(self.ref(direct ?? room))) === undefined) return [];
    try {
      return await skipped.before(room, event.event_id);
    } catch (error) {
      if (isTransient(error)) throw error;
      // An event its homeserver does not know was not sent by it: nothing of the room's timeline to read.
      const unknown = matrixErrcode(error) === "M_NOT_FOUND";
      log[unknown ? "debug" : "warn"](
        { err: error, room, eventId: event.event_id },
        "cannot read back the room's timeline for events never sent",
      );
      return [];
    }
  }

  private async onEvent(raw: unknown, lookBack: boolean, mayWait: boolean): Promise<void> {
    const { self, links, guard, directChats, invitations, commands, markings, ghosts, notices } = this.deps;
    const wire = parseMatrixEvent(raw);
    // What the bridge's own users do is what the bridge did: never bridged back.
    if (self.isBridgeUser(wire.sender)) return;
    if (lookBack) for (const skipped of await this.skippedBefore(wire)) await this.handle(skipped, false);
    const event = await this.clear(wire, raw, mayWait);
    // Waiting for its key: handled again once it comes.
    if (event === undefined) return;
    const direct = await directChats.conversationOf(event.room_id);
    // A newcomer that is the bot or another ghost is then invited as into any room.
    if (
      direct !== undefined &&
      (await directChats.endedByNewcomer(event, direct)) &&
      !self.isBridgeUser(event.state_key ?? "")
    )
      return;
    if (
      event.type === EventType.member &&
      event.state_key !== undefined &&
      self.isBridgeUser(event.state_key)
    ) {
      const membership = event.content["membership"];
      if (membership === "invite") await invitations.onInvite(event, event.state_key);
      // Kicked or banned by a room moderator: the next message must join (or be refused) again.
      else if (membership === "leave" || membership === "ban")
        ghosts.departed(event.room_id, event.state_key);
      return;
    }
    if (direct === undefined && isCommand(event)) {
      await commands.onCommand(event);
      return;
    }
    const conversation = direct ?? event.room_id;
    const match = await links.resolve(self.ref(conversation));
    if (match === undefined) {
      // State and receipts of rooms the bot merely sits in are no one's concern; messages are refused.
      if (carriesContent(event))
        throw new PermanentError("FG_NATIVE_INVALID", `room ${event.room_id} is not linked`, {
          detail: { room: event.room_id },
        });
      return;
    }
    if (event.type === EventType.marking) {
      await markings.onMarkingChanged(event);
      return;
    }
    if (event.type === EventType.encryption && guard.bridgesEncryptedRooms) {
      // The room goes on being bridged, encrypted both ways from now on.
      guard.encrypted(event.room_id, event.content);
      return;
    }
    if (event.type === EventType.encryption || event.type === EventType.encrypted) {
      // Nothing goes into the room either: plain text from other agencies would break what its members expect.
      if (direct === undefined) guard.checked(event.room_id, ENCRYPTED_REFUSAL);
      await notices.sayOnce(event.room_id, "encrypted", ENCRYPTED_NOTICE);
      if (event.type === EventType.encrypted)
        throw new PermanentError("FG_NATIVE_INVALID", "end-to-end encrypted event; fedgate cannot read it", {
          detail: { room: event.room_id },
        });
      return;
    }
    const refusal = direct === undefined ? guard.refusal(event.room_id) : undefined;
    if (refusal !== undefined)
      throw new PermanentError("FG_NATIVE_INVALID", `room ${event.room_id} is not bridged: ${refusal}`);
    // Whose message, reaction or membership it is: a membership is the member's, whoever changed it.
    const speaker = event.type === EventType.member ? (event.state_key ?? event.sender) : event.sender;
    const outsider = guard.outsiderRefusal(speaker);
    if (outsider !== undefined)
      throw new PermanentError("FG_NATIVE_INVALID", outsider, {
        detail: { room: event.room_id, user: speaker },
      });
    // A direct chat is its participant's: nothing of anyone else in its room is bridged.
    const participant = direct === undefined ? undefined : parseDirectConversation(direct)?.participant;
    if (direct !== undefined && speaker !== participant)
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `only ${participant ?? "its participant"} is bridged from their direct chat, not ${speaker}`,
        { detail: { room: event.room_id, user: speaker } },
      );
    if (event.type === EventType.redaction && (await this.onReactionRedacted(event, conversation))) return;
    await this.publish(event, conversation, direct === undefined);
  }

  /**
   * The event as its sender wrote it: an encrypted one decrypted (with encryption enabled), anything else as
   * it is. FG_NATIVE_UNDECRYPTABLE for one the bridge holds no key for: logged, never published. One whose
   * key may still come waits for it, when `mayWait` (see onRoomKeys): undefined then.
   */
  private async clear(event: MatrixEvent, raw: unknown, mayWait: boolean): Promise<MatrixEvent | undefined> {
    const { decrypt, parked } = this.deps;
    if (event.type !== EventType.encrypted || decrypt === undefined || !isRecord(raw)) return event;
    let decrypted: DecryptedEvent;
    try {
      decrypted = await decrypt(event.room_id, raw);
    } catch (error) {
      const sessionId = error instanceof FedgateError ? error.detail["awaitedSession"] : undefined;
      if (!mayWait || parked === undefined || typeof sessionId !== "string") throw error;
      await parked.park({ roomId: event.room_id, sessionId }, raw);
      this.deps.log.info(
        { room: event.room_id, eventId: event.event_id },
        "encrypted Matrix event waits for its key",
      );
      return undefined;
    }
    if (decrypted.sender !== event.sender)
      throw new PermanentError(
        "FG_NATIVE_UNDECRYPTABLE",
        "an encrypted event whose key is another sender's",
        {
          detail: { room: event.room_id, eventId: event.event_id },
        },
      );
    // Relations stay outside the encryption, so that servers can follow them: put back what the clear
    // content lacks.
    const relation = event.content["m.relates_to"];
    const content =
      relation !== undefined && decrypted.content["m.relates_to"] === undefined
        ? { ...decrypted.content, "m.relates_to": relation }
        : decrypted.content;
    return parseMatrixEvent({ ...raw, type: decrypted.type, content });
  }

  private async publish(event: MatrixEvent, conversation: string, isRoom: boolean): Promise<void> {
    const { self, runtime, markings, natives, media, reactions } = this.deps;
    const ref = self.ref(conversation);
    // A message seen before (a retried transaction) is not published again.
    if (event.type === EventType.message && (await runtime.messages.eventId(ref, event.event_id))) return;
    const sender = event.type === EventType.member ? (event.state_key ?? event.sender) : event.sender;
    const normalised = await toNormalisedEvent(event, {
      instance: this.config.instance,
      conversation,
      sender: await natives.senderOf(event, sender),
      eventId: runtime.eventIdOf(event.event_id),
      ...(isRoom ? await markings.roomMarkingOf(event.room_id) : {}),
      maxBodyBytes: this.config.maxBodyBytes,
      eventIdOf: (id) => runtime.messages.eventId(ref, id),
      describeMedia: (file) => media.describeMedia(file),
    });
    if (normalised === undefined) return;
    await runtime.publish(normalised);
    if (normalised.type === "reaction.added")
      await reactions.rememberReceived(event.event_id, received(normalised));
  }

  /** A redacted reaction is the reaction taken back; true when the redaction was one. */
  private async onReactionRedacted(event: MatrixEvent, conversation: string): Promise<boolean> {
    const { runtime, natives, reactions } = this.deps;
    const target = event.redacts ?? event.content["redacts"];
    if (typeof target !== "string") return false;
    const reaction = await reactions.received(target);
    if (reaction === undefined) return false;
    const removal: NormalisedEvent = {
      specVersion: "1",
      id: runtime.eventIdOf(event.event_id),
      type: "reaction.removed",
      source: { network: NETWORK, instance: this.config.instance, conversation, messageId: event.event_id },
      sender: await natives.senderOf(event, reaction.sender),
      content: { reaction: reaction.key },
      relations: { reactsTo: reaction.reactsTo },
      timestamp: new Date(event.origin_server_ts).toISOString(),
    };
    await runtime.publish(removal);
    return true;
  }

  /**
   * An encrypted event the bridge cannot read, now or (waiting for its key) any more: dead-lettered for
   * operators, and its room told, as for any message the bridge does not carry.
   */
  async notDecrypted(raw: unknown, error: FedgateError): Promise<void> {
    await this.deps.undecryptable?.(raw, error);
    // Also called from the sweep of events whose keys never came, which must go on past a failure.
    await this.explain(raw, error).catch((cause: unknown) => {
      this.deps.log.warn({ err: cause }, "cannot tell the room a message was not bridged");
    });
  }

  /**
   * Tells a bridged room why a message in it was not bridged, as a notice answering it. Rooms that are not
   * linked, or were refused (and told so once), hear nothing: the bot would answer every message there.
   */
  private async explain(raw: unknown, error: FedgateError): Promise<void> {
    const { self, links, guard, notices, log } = this.deps;
    const { room, eventId } = eventIds(raw);
    if (room === undefined || eventId === undefined || !guard.hasBot(room)) return;
    const { type, sender } = raw as { type?: unknown; sender?: unknown };
    // An encrypted event the bridge decrypted was refused for what it holds: answered as the message it is.
    const message =
      type === EventType.message || (type === EventType.encrypted && this.deps.decrypt !== undefined);
    if (!message || !isEventId(eventId)) return;
    // The bridge's own notices are never answered: the bot would answer itself for ever.
    if (typeof sender !== "string" || self.isBridgeUser(sender)) return;
    // Asked of the store, not only the mirror: a link made a moment ago may not have reached this replica's watch.
    const bridged = (await links.resolve(self.ref(room))) !== undefined && guard.refusal(room) === undefined;
    if (!bridged) return;
    await notices
      .say(room, `Not bridged: ${error.message}`, { inReplyTo: eventId })
      .catch((cause: unknown) =>
        log.warn({ err: cause, room }, "cannot tell the room a message was not bridged"),
      );
  }
}

/** The reaction an official made, as the bridge remembers it for its redaction. */
function received(event: NormalisedEvent): ReceivedReaction {
  return {
    reactsTo: event.relations?.reactsTo ?? "",
    key: event.content?.reaction ?? "",
    sender: event.sender.userId,
  };
}

/** Whether an event is something a person wrote (rather than state or a receipt). */
function carriesContent(event: MatrixEvent): boolean {
  const kinds: string[] = [
    EventType.message,
    EventType.reaction,
    EventType.redaction,
    EventType.encrypted,
    EventType.sticker,
  ];
  return kinds.includes(event.type);
}

/** Ids for a log line about an event that may be malformed; a hostile id is cut to a loggable length. */
function eventIds(raw: unknown): { room?: string; eventId?: string } {
  if (typeof raw !== "object" || raw === null) return {};
  const { room_id: room, event_id: eventId } = raw as Record<string, unknown>;
  return {
    ...(typeof room === "string" ? { room: loggableId(room) } : {}),
    ...(typeof eventId === "string" ? { eventId: loggableId(eventId) } : {}),
  };
}
