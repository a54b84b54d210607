/**
 * The Matrix bridge: an Application Service that puts what officials write in linked Matrix rooms on the
 * bus, and posts what the core delivers as ghosts, one Matrix user per remote person.
 *
 * Inbound, the homeserver pushes transactions; each event is published before the transaction is answered
 * (see AppServiceEndpoint), with an event id derived from the Matrix event id, so that a retried
 * transaction stores nothing twice. Outbound, deliveries of this instance arrive in order; each Matrix call
 * carries a transaction id derived from the delivery, so that a retried delivery posts nothing twice. Synapse
 * forgets transaction ids when it restarts, so each event a delivery posts also carries its transaction id
 * in its content, and a delivery handled again looks in the room for what it posted before (postedBefore).
 */
import { createHash, randomUUID } from "node:crypto";
import type { Attachment, Delivery, EventSender, Link, NormalisedEvent } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { parseDirectConversation } from "../../schemas/contract/directConversations.js";
import { FedgateError, isTransient, PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { RemoteUser } from "../../gateway/platform/stores/IdentityStore.js";
import {
  decodeJson,
  encodeJson,
  KeyExistsError,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";
import { JoinCodeStore } from "../../gateway/platform/stores/JoinCodeStore.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import {
  AdapterRuntime,
  type DeliverySettings,
  type NativeMessage,
  type NativeRelations,
} from "../kit/AdapterRuntime.js";
import { carryAttachments } from "../kit/carryAttachments.js";
import { isGatewayNotice } from "../kit/isGatewayNotice.js";
import { matrixCapabilities } from "./capabilities.js";
import { attemptedBefore } from "../kit/attemptedBefore.js";
import { BoundedMap } from "../kit/BoundedMap.js";
import {
  attachmentFetchOptions,
  describeAttachment,
  fetchAttachment,
  fetchFile,
} from "../kit/fetchAttachment.js";
import { openDirectChat } from "../kit/openDirectChat.js";
import { puppetName } from "../kit/puppetName.js";
import { listenAppService, openTxnStore } from "./AppServiceEndpoint.js";
import type { HttpListener } from "../../gateway/platform/http/HttpListener.js";
import type { LoadedMatrixConfig } from "./config.js";
import type { MatrixBridgeConfig } from "./config.types.js";
import { ghostUserId, isGhost, localpartOf, type GhostNaming } from "./ghosts.js";
import { MatrixClient, matrixErrcode, type MatrixProfile } from "./MatrixClient.js";
import {
  EventType,
  isRecord,
  markingOfState,
  markingStateKey,
  MsgType,
  parseMatrixEvent,
  type MatrixEvent,
} from "./matrixEvents.js";
import { isEventId, isUserId, loggableId, serverOf } from "./matrixIds.js";
import { SkippedEvents } from "./SkippedEvents.js";
import { createMediaRouter, mediaLink } from "./MediaProxy.js";
import { powerOf, privilegedCreators, statePowerFor } from "./powerLevels.js";
import { toMatrixContent, type MatrixContent } from "./toMatrixContent.js";
import { toNormalisedEvent, type MatrixMedia } from "./toNormalisedEvent.js";

const NETWORK = "matrix";
/** Direct chat rooms, reactions sent and received, notices said once: what a restart must not forget. */
const STATE_BUCKET = "fedgate_matrix_state";
/** Tchap's rule for who may join a room; "restricted" keeps out users of other servers. */
const ACCESS_RULES_STATE = "im.vector.room.access_rules";
/** Power level a room member needs to link or unlink the room by a bot command (a room moderator). */
const LINKING_POWER = 50;
const COMMAND = "!fedgate";
const CACHE_SIZE = 5000;
/** Larger pictures are not given to ghosts: a profile picture needs far less. */
const MAX_AVATAR_BYTES = 1024 * 1024;
/** Content key of each event a delivery posts: its transaction id, by which a retry finds it in the room. */
const POSTED_MARKER = "eu.fedgate.txn";
/**
 * How many of its latest events in the room a sender's retried delivery looks through. Deliveries to a
 * conversation go out one at a time, so the ones it looks for are among the last few the sender posted.
 */
const POSTED_LOOKBACK = 50;

/** Why a room may not be bridged, in words for the room; undefined when it may. */
type RoomRefusal = string | undefined;

interface ResolvedConfig extends MatrixBridgeConfig {
  userServers: [string, ...string[]];
  roomServers: [string, ...string[]];
  publicUrl: string;
}

/** A native user as the bridge remembers them: the name events give, and their picture's mxc URI. */
interface NativeProfile {
  displayName: string;
  avatarMxc?: string;
}

/** A reaction an official made, kept so that its redaction can be bridged as the reaction taken back. */
interface ReceivedReaction {
  reactsTo: string;
  key: string;
  sender: string;
}

export class MatrixBridge {
  /** Rooms the bot is in. */
  private readonly botRooms = new Set<string>();
  /** Linked rooms checked for whether they may be bridged, and why not. */
  private readonly checkedRooms = new Map<string, RoomRefusal>();
  /** Ghosts known to be in a room: `${room} ${ghost}`. */
  private readonly present = new BoundedMap<string, true>(CACHE_SIZE);
  /** Ghost profiles already set: ghost → display name. */
  private readonly profiles = new BoundedMap<string, string>(CACHE_SIZE);
  /** Native users as events name them: display name and picture (its mxc URI). */
  private readonly natives = new BoundedMap<string, NativeProfile>(CACHE_SIZE);
  /** Which rooms are direct chats, and of which conversation (null: not one). */
  private readonly directRooms = new BoundedMap<string, string | null>(CACHE_SIZE);
  /** Room markings from their state event, by room id (null: none). */
  private readonly markings = new BoundedMap<string, string | null>(CACHE_SIZE);
  private server: HttpListener | undefined;
  /** What the homeserver never sent of linked rooms' timelines. */
  private readonly skipped: SkippedEvents;

  private constructor(
    private readonly config: ResolvedConfig,
    private readonly bot: string,
    private readonly client: MatrixClient,
    private readonly runtime: AdapterRuntime,
    private readonly links: LinkStore,
    private readonly joinCodes: JoinCodeStore,
    private readonly state: KeyValueStore,
    /** Signs the file links the bridge serves. */
    private readonly mediaKey: Buffer,
    private readonly log: Logger,
  ) {
    this.skipped = new SkippedEvents(state, client, (user) => this.isBridgeUser(user), log);
  }

  static async start(
    bus: Bus,
    loaded: LoadedMatrixConfig,
    log: Logger,
    deliveries: DeliverySettings = {},
  ): Promise<MatrixBridge> {
    const { config: section, registration } = loaded;
    const userServers: [string, ...string[]] = section.userServers ?? [section.serverName];
    const config: ResolvedConfig = {
      ...section,
      userServers,
      roomServers: section.roomServers ?? userServers,
      publicUrl: (section.publicUrl ?? registration.url).replace(/\/+$/, ""),
    };
    const runtime = await AdapterRuntime.open(bus, {
      capabilities: matrixCapabilities,
      network: NETWORK,
      instance: config.instance,
      log,
      ...deliveries,
    });
    const links = runtime.links;
    const client = new MatrixClient({
      homeserverUrl: config.homeserverUrl,
      asToken: registration.as_token,
      log,
    });
    const bot = `@${registration.sender_localpart}:${config.serverName}`;
    const bridge = new MatrixBridge(
      config,
      bot,
      client,
      runtime,
      links,
      await JoinCodeStore.open(bus, log),
      await bus.keyValue(STATE_BUCKET),
      // A key of its own for file links, so that a leaked link reveals nothing of the AS tokens.
      createHash("sha256").update(`fedgate media links\0${registration.as_token}`).digest(),
      log,
    );
    try {
      const media = createMediaRouter({
        client,
        key: bridge.mediaKey,
        baseUrl: config.publicUrl,
        log,
        maxBytes: config.attachments.maxBytes,
      });
      bridge.server = await listenAppService(
        {
          hsToken: registration.hs_token,
          txns: await openTxnStore(bus),
          onEvents: (events) => bridge.onTransaction(events),
          userExists: (userId) => bridge.ghostExists(userId),
          log,
        },
        config.listen.host,
        config.listen.port,
        [media],
      );
      await runtime.consumeDeliveries((delivery, relations) => bridge.deliver(delivery, relations));
      links.onChange(() => void bridge.joinLinkedRooms());
      await bridge.joinLinkedRooms();
    } catch (error) {
      await bridge.stop();
      throw error;
    }
    log.info({ url: bridge.server.url, bot }, "Matrix bridge listening for the homeserver");
    return bridge;
  }

  /** Where the homeserver reaches this bridge. */
  get url(): string {
    return this.server?.url ?? "";
  }

  private get naming(): GhostNaming {
    return { prefix: this.config.ghostPrefix, serverName: this.config.serverName };
  }

  private ref(conversation: string): { network: string; instance: string; conversation: string } {
    return { network: NETWORK, instance: this.config.instance, conversation };
  }

  private isBridgeUser(userId: string): boolean {
    return userId === this.bot || isGhost(this.naming, userId);
  }

  /**
   * Why a user may not speak for the agency through the bridge, in words for them; undefined when they may:
   * a user of one of userServers.
   */
  private outsiderRefusal(userId: string): string | undefined {
    const server = serverOf(userId);
    if (server !== undefined && this.config.userServers.includes(server)) return undefined;
    return `fedgate bridges only users of ${this.config.userServers.join(" or ")}, and ${userId} is not one`;
  }

  // ---------------------------------------------------------------- inbound: the homeserver's events

  /**
   * One transaction, event by event in order. Bad input is logged and skipped, so the homeserver does not
   * retry it forever; a passing failure (the bus, the homeserver) fails the transaction, which the
   * homeserver then retries whole: what was published already is found by its derived event id.
   */
  private async onTransaction(events: readonly unknown[]): Promise<void> {
    for (const raw of events) await this.handle(raw, true);
  }

  /**
   * One event of the room's timeline, and first, when `lookBack`, those before it the homeserver never sent
   * (see SkippedEvents). A native user's event, once handled, bridged or refused, is the room's latest.
   */
  private async handle(raw: unknown, lookBack: boolean): Promise<void> {
    const { room_id: room, event_id: eventId, sender } = isRecord(raw) ? raw : {};
    const native =
      typeof room === "string" &&
      typeof eventId === "string" &&
      isEventId(eventId) &&
      typeof sender === "string" &&
      !this.isBridgeUser(sender);
    try {
      await this.onEvent(raw, lookBack);
    } catch (error) {
      if (error instanceof FedgateError && error.transient) throw error;
      const ids = eventIds(raw);
      if (error instanceof FedgateError) {
        this.log.warn({ err: error, ...ids }, "Matrix event not bridged");
        if (error.code === "FG_NATIVE_INVALID") await this.explain(raw, error);
      } else {
        this.log.error({ err: error, ...ids }, "Matrix event not bridged: unexpected failure");
      }
    }
    if (native) await this.skipped.handled(room, eventId);
  }

  /**
   * The events before a native user's the homeserver skipped, in a linked room (elsewhere none matters);
   * none when the room cannot be read back for good.
   */
  private async skippedBefore(event: MatrixEvent): Promise<unknown[]> {
    const room = event.room_id;
    const direct = await this.directConversationOf(room);
    if ((await this.links.resolve(this.ref(direct ?? room))) === undefined) return [];
    try {
      return await this.skipped.before(room, event.event_id);
    } catch (error) {
      if (isTransient(error)) throw error;
      // An event its homeserver does not know was not sent by it: nothing of the room's timeline to read.
      const unknown = matrixErrcode(error) === "M_NOT_FOUND";
      this.log[unknown ? "debug" : "warn"](
        { err: error, room, eventId: event.event_id },
        "cannot read back the room's timeline for events never sent",
      );
      return [];
    }
  }

  private async onEvent(raw: unknown, lookBack: boolean): Promise<void> {
    const event = parseMatrixEvent(raw);
    // What the bridge's own users do is what the bridge did: never bridged back.
    if (this.isBridgeUser(event.sender)) return;
    if (lookBack) for (const skipped of await this.skippedBefore(event)) await this.handle(skipped, false);
    const direct = await this.directConversationOf(event.room_id);
    // A newcomer that is the bot or another ghost is then invited as into any room.
    if (
      direct !== undefined &&
      (await this.endedByNewcomer(event, direct)) &&
      !this.isBridgeUser(event.state_key ?? "")
    )
      return;
    if (
      event.type === EventType.member &&
      event.state_key !== undefined &&
      this.isBridgeUser(event.state_key)
    ) {
      const membership = event.content["membership"];
      if (membership === "invite") await this.onInvite(event, event.state_key);
      // Kicked or banned by a room moderator: the next message must join (or be refused) again.
      else if (membership === "leave" || membership === "ban")
        this.present.delete(`${event.room_id} ${event.state_key}`);
      return;
    }
    if (direct === undefined && isCommand(event)) {
      await this.onCommand(event);
      return;
    }
    const conversation = direct ?? event.room_id;
    const match = await this.links.resolve(this.ref(conversation));
    if (match === undefined) {
      // State and receipts of rooms the bot merely sits in are no one's concern; messages are refused.
      if (carriesContent(event))
        throw new PermanentError("FG_NATIVE_INVALID", `room ${event.room_id} is not linked`, {
          detail: { room: event.room_id },
        });
      return;
    }
    if (event.type === EventType.marking) {
      await this.onMarkingChanged(event);
      return;
    }
    if (event.type === EventType.encryption || event.type === EventType.encrypted) {
      // Nothing goes into the room either: plain text from other agencies would break what its members expect.
      if (direct === undefined) this.checkedRooms.set(event.room_id, ENCRYPTED_REFUSAL);
      await this.sayOnce(event.room_id, "encrypted", ENCRYPTED_NOTICE);
      if (event.type === EventType.encrypted)
        throw new PermanentError("FG_NATIVE_INVALID", "end-to-end encrypted event; fedgate cannot read it", {
          detail: { room: event.room_id },
        });
      return;
    }
    const refusal = direct === undefined ? this.checkedRooms.get(event.room_id) : undefined;
    if (refusal !== undefined)
      throw new PermanentError("FG_NATIVE_INVALID", `room ${event.room_id} is not bridged: ${refusal}`);
    // Whose message, reaction or membership it is: a membership is the member's, whoever changed it.
    const speaker = event.type === EventType.member ? (event.state_key ?? event.sender) : event.sender;
    const outsider = this.outsiderRefusal(speaker);
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

  private async publish(event: MatrixEvent, conversation: string, isRoom: boolean): Promise<void> {
    const ref = this.ref(conversation);
    // A message seen before (a retried transaction) is not published again.
    if (event.type === EventType.message && (await this.runtime.messages.eventId(ref, event.event_id)))
      return;
    const sender = event.type === EventType.member ? (event.state_key ?? event.sender) : event.sender;
    const normalised = await toNormalisedEvent(event, {
      instance: this.config.instance,
      conversation,
      sender: await this.senderOf(event, sender),
      eventId: this.runtime.eventIdOf(event.event_id),
      ...(isRoom ? await this.roomMarkingOf(event.room_id) : {}),
      maxBodyBytes: this.config.maxBodyBytes,
      eventIdOf: (id) => this.runtime.messages.eventId(ref, id),
      describeMedia: (media) => this.describeMedia(media),
    });
    if (normalised === undefined) return;
    await this.runtime.publish(normalised);
    if (normalised.type === "reaction.added") await this.rememberReaction(event.event_id, normalised);
  }

  /**
   * A native user as an event names them: their display name (else their localpart) and, where they have
   * one, a link to their picture that the bridge serves. A join carries both; otherwise the homeserver is
   * asked once.
   */
  private async senderOf(event: MatrixEvent, userId: string): Promise<EventSender> {
    let known = this.natives.get(userId);
    // A join names the member as they are now (a join after a join is a new name or picture).
    if (
      event.type === EventType.member &&
      event.state_key === userId &&
      event.content["membership"] === "join"
    ) {
      known = this.profileFrom(userId, event.content);
      this.natives.set(userId, known);
    }
    if (known === undefined) {
      // A name is a courtesy: without one, the localpart does.
      const profile = await this.client.getProfile(userId).catch((): MatrixProfile => ({}));
      known = this.profileFrom(userId, profile);
      this.natives.set(userId, known);
    }
    // The picture's link is made for each event: one kept since an earlier event may have expired.
    const { displayName, avatarMxc } = known;
    return {
      userId,
      displayName,
      ...(avatarMxc === undefined ? {} : { avatarUrl: this.link(avatarMxc, "avatar") }),
    };
  }

  private profileFrom(
    userId: string,
    profile: { displayname?: unknown; avatar_url?: unknown },
  ): NativeProfile {
    const { displayname: name, avatar_url: avatar } = profile;
    const displayName = typeof name === "string" && name.trim() !== "" ? name : localpartOf(userId);
    if (typeof avatar !== "string" || !avatar.startsWith("mxc://")) return { displayName };
    return { displayName, avatarMxc: avatar };
  }

  /** A link other bridges fetch a Matrix file from; it expires (attachments.linkLifetimeSeconds). */
  private link(mxc: string, name: string): string {
    const lifetimeSeconds = this.config.attachments.linkLifetimeSeconds;
    return mediaLink({ key: this.mediaKey, baseUrl: this.config.publicUrl, lifetimeSeconds }, mxc, name);
  }

  /**
   * A file in a Matrix message: its size, hash and type from the homeserver's copy (the type its bytes show,
   * not the one the message declares), and a link the bridge serves. The homeserver is trusted wherever it is.
   */
  private async describeMedia(media: MatrixMedia): Promise<Attachment> {
    const { url, headers } = this.client.mediaDownload(media.mxc);
    const described = await describeAttachment(url, {
      ...attachmentFetchOptions(this.config.attachments, [this.config.homeserverUrl]),
      headers,
    });
    return { ...described, name: media.name, url: this.link(media.mxc, media.name) };
  }

  private async rememberReaction(matrixEventId: string, event: NormalisedEvent): Promise<void> {
    const reaction: ReceivedReaction = {
      reactsTo: event.relations?.reactsTo ?? "",
      key: event.content?.reaction ?? "",
      sender: event.sender.userId,
    };
    await this.state.put(`reaction.in.${keyToken(matrixEventId)}`, encodeJson(reaction));
  }

  /** A redacted reaction is the reaction taken back; true when the redaction was one. */
  private async onReactionRedacted(event: MatrixEvent, conversation: string): Promise<boolean> {
    const target = event.redacts ?? event.content["redacts"];
    if (typeof target !== "string") return false;
    const entry = await this.state.get(`reaction.in.${keyToken(target)}`);
    if (entry === undefined) return false;
    const reaction = decodeJson(entry.value) as ReceivedReaction;
    const removal: NormalisedEvent = {
      specVersion: "1",
      id: this.runtime.eventIdOf(event.event_id),
      type: "reaction.removed",
      source: { network: NETWORK, instance: this.config.instance, conversation, messageId: event.event_id },
      sender: await this.senderOf(event, reaction.sender),
      content: { reaction: reaction.key },
      relations: { reactsTo: reaction.reactsTo },
      timestamp: new Date(event.origin_server_ts).toISOString(),
    };
    await this.runtime.publish(removal);
    return true;
  }

  /**
   * Tells a bridged room why a message in it was not bridged, as a notice answering it. Rooms that are not
   * linked, or were refused (and told so once), hear nothing: the bot would answer every message there.
   */
  private async explain(raw: unknown, error: FedgateError): Promise<void> {
    const { room, eventId } = eventIds(raw);
    if (room === undefined || eventId === undefined || !this.botRooms.has(room)) return;
    const { type, sender } = raw as { type?: unknown; sender?: unknown };
    if (type !== EventType.message || !isEventId(eventId)) return;
    // The bridge's own notices are never answered: the bot would answer itself for ever.
    if (typeof sender !== "string" || this.isBridgeUser(sender)) return;
    // Asked of the store, not only the mirror: a link made a moment ago may not have reached this replica's watch.
    const bridged =
      (await this.links.resolve(this.ref(room))) !== undefined && this.checkedRooms.get(room) === undefined;
    if (!bridged) return;
    await this.say(room, `Not bridged: ${error.message}`, { inReplyTo: eventId }).catch((cause: unknown) =>
      this.log.warn({ err: cause, room }, "cannot tell the room a message was not bridged"),
    );
  }

  // ---------------------------------------------------------------- rooms: invites, links, commands

  private async onInvite(event: MatrixEvent, invitee: string): Promise<void> {
    const outsider = this.outsiderRefusal(event.sender);
    if (outsider !== undefined) await this.refuseInvite(event, invitee, outsider);
    if (invitee === this.bot) {
      const foreign = this.foreignRoomRefusal(roomServerOfInvite(event));
      if (foreign !== undefined) await this.refuseInvite(event, invitee, foreign);
      await this.client.joinRoom(event.room_id);
      this.botRooms.add(event.room_id);
      this.log.info({ room: event.room_id, by: event.sender }, "bot invited into a room");
      if (this.links.match(this.ref(event.room_id)) !== undefined) await this.checkLinkedRoom(event.room_id);
      else await this.say(event.room_id, HELP);
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
      this.botRooms.has(event.room_id) ||
      (await this.links.resolve(this.ref(event.room_id))) !== undefined ||
      (await this.directConversationOf(event.room_id)) !== undefined
    )
      await this.refuseInvite(event, invitee, SHARED_ROOM_REFUSAL);
    const remote = await this.runtime.identities.remoteFor({
      network: NETWORK,
      instance: this.config.instance,
      userId: invitee,
    });
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
      await this.client.leaveRoom(room, invitee === this.bot ? undefined : invitee, reason);
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
    const { room_id: room, sender: native } = event;
    await this.client.joinRoom(room, ghost);
    const others = (await this.client.presentMembers(room, ghost)).filter((u) => u !== native && u !== ghost);
    if (others.length > 0) await this.refuseInvite(event, ghost, SHARED_ROOM_REFUSAL);
    const nativeUser = { network: NETWORK, instance: this.config.instance, userId: native };
    let conversation: string;
    try {
      conversation = await openDirectChat(this.links, nativeUser, this.config.agency, remote, this.log);
    } catch (error) {
      const reason = error instanceof Error ? error.message : "the direct chat cannot be opened";
      await this.client.leaveRoom(room, ghost, reason).catch((cause: unknown) => {
        this.log.warn({ err: cause, room, ghost }, "the ghost cannot leave a direct chat it could not open");
      });
      throw error;
    }
    this.present.set(`${room} ${ghost}`, true);
    await this.rememberDirect(room, conversation);
  }

  /**
   * A third person invited to or joining a direct chat's room ends it: the ghost says so and leaves, and the
   * room is no longer the chat's (the next message opens a new one). True when the event did that.
   */
  private async endedByNewcomer(event: MatrixEvent, conversation: string): Promise<boolean> {
    const membership = event.content["membership"];
    if (event.type !== EventType.member || (membership !== "invite" && membership !== "join")) return false;
    const newcomer = event.state_key ?? "";
    const ghost = this.ghostOfDirect(conversation);
    if (newcomer === parseDirectConversation(conversation)?.participant || newcomer === ghost) return false;
    const room = event.room_id;
    this.log.warn({ room, newcomer }, "a third person entered a direct chat's room; it is no longer bridged");
    if (ghost !== undefined) {
      try {
        await this.client.sendEvent(
          room,
          EventType.message,
          { msgtype: MsgType.notice, body: DIRECT_ENDED_NOTICE },
          txnIdFor(`direct chat ended ${room}`, 0),
          ghost,
        );
        await this.client.leaveRoom(room, ghost, DIRECT_ENDED_NOTICE);
      } catch (error) {
        // Passing: the homeserver retries the transaction, and the room is still the chat's till then.
        if (isTransient(error)) throw error;
        this.log.warn({ err: error, room, ghost }, "the ghost cannot leave a direct chat that ended");
      }
      this.present.delete(`${room} ${ghost}`);
    }
    await this.state.delete(`direct.room.${keyToken(room)}`);
    const chatKey = `direct.chat.${keyToken(conversation)}`;
    const chat = await this.state.get(chatKey);
    if (chat !== undefined && decodeJson(chat.value) === room) await this.state.delete(chatKey);
    this.directRooms.set(room, null);
    return true;
  }

  /** The ghost of the remote person of a direct conversation. */
  private ghostOfDirect(conversation: string): string | undefined {
    const direct = parseDirectConversation(conversation);
    return direct === undefined ? undefined : ghostUserId(this.naming, direct.peer);
  }

  /** Whether a room is shared with others: linked as a room, or with the bot in it. Never a direct chat. */
  private isSharedRoom(room: string): boolean {
    return this.botRooms.has(room) || this.links.match(this.ref(room)) !== undefined;
  }

  /** A direct chat's room, both ways: its events belong to the conversation, deliveries go to the room. */
  private async rememberDirect(room: string, conversation: string): Promise<void> {
    await this.state.put(`direct.room.${keyToken(room)}`, encodeJson(conversation));
    await this.state.put(`direct.chat.${keyToken(conversation)}`, encodeJson(room));
    this.directRooms.set(room, conversation);
  }

  /**
   * The direct conversation a room is, if it is one. Asked for every event, so kept in memory: a room
   * becomes a direct chat only through rememberDirect, which updates the memory too.
   */
  private async directConversationOf(room: string): Promise<string | undefined> {
    // Remembered before this check existed, a shared room may still be mapped: it is not a direct chat.
    if (this.isSharedRoom(room)) return undefined;
    let known = this.directRooms.get(room);
    if (known === undefined) {
      const entry = await this.state.get(`direct.room.${keyToken(room)}`);
      known = entry === undefined ? null : (decodeJson(entry.value) as string);
      this.directRooms.set(room, known);
    }
    return known ?? undefined;
  }

  /** The bot joins every linked room it is not in yet, and checks each one may be bridged. */
  private async joinLinkedRooms(): Promise<void> {
    for (const { link, endpoint } of this.links.endpointsOf(NETWORK, this.config.instance)) {
      const room = endpoint.conversation;
      if ((endpoint.kind ?? "room") !== "room" || this.checkedRooms.has(room)) continue;
      // A room whose id names a server outside roomServers is not joined at all.
      const foreign = this.foreignRoomRefusal(serverOf(room));
      if (foreign !== undefined) {
        this.checkedRooms.set(room, foreign);
        this.log.warn(
          { room, link: link.id, refusal: foreign },
          "linked room refused; the bot does not join it",
        );
        continue;
      }
      try {
        if (!this.botRooms.has(room)) await this.client.joinRoom(room);
        this.botRooms.add(room);
        await this.checkLinkedRoom(room);
      } catch (error) {
        this.log.warn(
          { err: error, room: endpoint.conversation, link: link.id },
          "the bot cannot join a linked room; invite it",
        );
      }
    }
  }

  /** A linked room the bridge may not bridge says so in the room, and stays unbridged. */
  private async checkLinkedRoom(room: string): Promise<void> {
    const refusal = await this.refusalOf(room);
    this.checkedRooms.set(room, refusal);
    if (refusal === undefined) return;
    this.log.warn({ room, refusal }, "linked room refused");
    // Encryption is also told when its state event comes in: one notice, whichever comes first.
    if (refusal === ENCRYPTED_REFUSAL) await this.sayOnce(room, "encrypted", ENCRYPTED_NOTICE);
    else await this.sayOnce(room, "refused", `fedgate will not bridge this room: ${refusal}.`);
  }

  /** Why a room of `server` may not be joined (a server outside roomServers, or none known); else undefined. */
  private foreignRoomRefusal(server: string | undefined): RoomRefusal {
    if (server !== undefined && this.config.roomServers.includes(server)) return undefined;
    return `fedgate joins only rooms of ${this.config.roomServers.join(" or ")}, and this room is ${server === undefined ? "of no server it knows" : `of ${server}`}`;
  }

  /**
   * Why a room may not be bridged, read from the room's state: a server outside roomServers, Tchap's rules,
   * no federation, encryption.
   */
  private async refusalOf(room: string): Promise<RoomRefusal> {
    const [rules, createEvent, encryption] = await Promise.all([
      this.client.getState(room, ACCESS_RULES_STATE, ""),
      this.client.getStateEvent(room, EventType.create, ""),
      this.client.getState(room, EventType.encryption, ""),
    ]);
    const creator = createEvent?.["sender"];
    const server =
      serverOf(room) ?? (typeof creator === "string" && isUserId(creator) ? serverOf(creator) : undefined);
    const foreign = this.foreignRoomRefusal(server);
    if (foreign !== undefined) return foreign;
    const create = isRecord(createEvent?.["content"]) ? createEvent["content"] : undefined;
    if (rules?.["rule"] === "restricted")
      return "its access rule is restricted, so it refuses users from outside servers, and every person fedgate brings in comes from another agency";
    if (create?.["m.federate"] === false)
      return "it was created without federation (m.federate: false), so no one from outside can ever join it";
    if (encryption !== undefined) return ENCRYPTED_REFUSAL;
    return undefined;
  }

  private async onCommand(event: MatrixEvent): Promise<void> {
    const room = event.room_id;
    const [, verb, argument] = (event.content["body"] as string).trim().split(/\s+/);
    if (verb !== "link" && verb !== "unlink") {
      await this.say(room, HELP, { inReplyTo: event.event_id });
      return;
    }
    const outsider = this.outsiderRefusal(event.sender);
    if (outsider !== undefined) {
      this.log.warn({ room, by: event.sender }, "bot command of a user of another server refused");
      await this.say(room, `Not done: ${outsider}.`, { inReplyTo: event.event_id });
      return;
    }
    const { power } = await this.powerOf(room, event.sender);
    if (power < LINKING_POWER) {
      await this.say(
        room,
        `Only room moderators (power level ${String(LINKING_POWER)} or more) may ${verb} this room.`,
        { inReplyTo: event.event_id },
      );
      return;
    }
    try {
      if (verb === "unlink") {
        const remaining = await this.links.removeEndpoint(this.ref(room));
        this.checkedRooms.delete(room);
        this.log.info({ room, by: event.sender }, "room unlinked by a bot command");
        await this.say(room, remaining === undefined ? "Unlinked; the link is gone." : "Unlinked.", {
          inReplyTo: event.event_id,
        });
        return;
      }
      if (argument === undefined) {
        await this.say(room, `Give the join code your fedgate administrator issued: ${LINK_USAGE}`, {
          inReplyTo: event.event_id,
        });
        return;
      }
      const refusal = await this.refusalOf(room);
      if (refusal !== undefined) {
        await this.say(room, `fedgate will not bridge this room: ${refusal}.`, { inReplyTo: event.event_id });
        return;
      }
      const link = await this.linkWithCode(event, argument);
      await this.say(
        room,
        `Linked to ${link.id}${link.description === undefined ? "" : `: ${link.description}`}.`,
      );
    } catch (error) {
      if (
        !(error instanceof PermanentError) ||
        !(error.code.startsWith("FG_LINK_") || error.code === "FG_JOIN_CODE_INVALID")
      )
        throw error;
      this.log.warn({ err: error, room, by: event.sender }, `bot command "${verb}" refused`);
      await this.say(room, `Not done: ${error.message}.`, { inReplyTo: event.event_id });
    }
  }

  /**
   * Joins the room to the link a join code grants, owned by the agency the code names. The code is the
   * authority: power in a room proves nothing about a link, as anyone can create a room. Audit-logged.
   */
  private async linkWithCode(event: MatrixEvent, code: string): Promise<Link> {
    const room = event.room_id;
    return this.joinCodes.redeem(code, this.ref(room), async (grant) => {
      const link = await this.links.addEndpoint(grant.linkId, {
        ...this.ref(room),
        agency: grant.agency,
        kind: "room",
      });
      this.checkedRooms.set(room, undefined);
      this.log.info(
        { room, link: link.id, agency: grant.agency, codeId: grant.codeId, by: event.sender },
        "room linked with a join code",
      );
      return link;
    });
  }

  /** A member's power in a room, and the power setting `stateType` there needs. */
  private async powerOf(
    room: string,
    userId: string,
    stateType: string = EventType.powerLevels,
  ): Promise<{ power: number; needed: number }> {
    const [levels, create] = await Promise.all([
      this.client.getState(room, EventType.powerLevels, ""),
      this.client.getStateEvent(room, EventType.create, ""),
    ]);
    return {
      power: powerOf(levels, userId, privilegedCreators(create)),
      needed: statePowerFor(levels, stateType),
    };
  }

  /**
   * A room's marking changed: kept for its next messages, and shown in its topic. Only room state under the
   * empty key, set by a member with the power to set it, is the room's marking: the same type sent as a
   * message (which any member may send), or under another state key, is refused.
   */
  private async onMarkingChanged(event: MatrixEvent): Promise<void> {
    const detail = { room: event.room_id, user: event.sender };
    if (event.state_key !== markingStateKey)
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `${event.sender}'s ${EventType.marking} ${event.state_key === undefined ? "message" : "state under another key"} is not the room's marking: only its state under the empty key is`,
        { detail },
      );
    const { power, needed } = await this.powerOf(event.room_id, event.sender, EventType.marking);
    if (power < needed)
      throw new PermanentError(
        "FG_NATIVE_INVALID",
        `${event.sender} has no power to set the room's marking; it is not changed`,
        { detail },
      );
    const marking = markingOfState(event.content);
    this.markings.set(event.room_id, marking ?? null);
    const topic = await this.client.getState(event.room_id, EventType.topic, "");
    const current = typeof topic?.["topic"] === "string" ? topic["topic"] : "";
    const text = withTopicMarking(current, marking);
    if (text === current) return;
    try {
      await this.client.sendState(event.room_id, EventType.topic, "", { topic: text });
    } catch (error) {
      if (matrixErrcode(error) !== "M_FORBIDDEN") throw error;
      await this.say(
        event.room_id,
        `The room's marking is now ${marking ?? "none"}. To show it in the topic, give fedgate power level 50.`,
      );
    }
  }

  private async roomMarkingOf(room: string): Promise<{ roomMarking?: string }> {
    let marking = this.markings.get(room);
    if (marking === undefined) {
      const content = await this.client.getState(room, EventType.marking, markingStateKey);
      marking = (content === undefined ? undefined : markingOfState(content)) ?? null;
      this.markings.set(room, marking);
    }
    return marking === null ? {} : { roomMarking: marking };
  }

  private async ghostExists(userId: string): Promise<boolean> {
    if (!isGhost(this.naming, userId)) return false;
    const remote = await this.runtime.identities.remoteFor({
      network: NETWORK,
      instance: this.config.instance,
      userId,
    });
    if (remote === undefined) return false;
    await this.client.registerUser(localpartOf(userId));
    return true;
  }

  // ---------------------------------------------------------------- outbound: deliveries as ghosts

  private async deliver(delivery: Delivery, relations: NativeRelations): Promise<NativeMessage | undefined> {
    const { event } = delivery;
    // A delivery back into the conversation its event came from is the gateway's own notice: the bot says it.
    if (isGatewayNotice(delivery)) {
      const room = await this.roomOf(delivery, undefined);
      const txnId = txnIdFor(delivery.id, 0);
      const posted = await this.postedBefore(delivery, room, this.bot);
      if (!posted.has(txnId)) await this.say(room, event.content?.body ?? "", { txnId });
      return undefined;
    }
    const ghost = await this.ghostFor(delivery);
    const room = await this.roomOf(delivery, ghost);
    const refusal = this.checkedRooms.get(room);
    if (refusal !== undefined)
      throw new PermanentError("FG_PEER_REFUSED", `room ${room} is not bridged: ${refusal}`);
    switch (event.type) {
      case "member.left":
        if (this.present.get(`${room} ${ghost}`) !== undefined || (await this.isMember(room, ghost))) {
          await this.client.leaveRoom(room, ghost);
          this.present.delete(`${room} ${ghost}`);
        }
        return undefined;
      case "member.joined":
        await this.enter(room, ghost);
        return undefined;
      case "message.deleted":
        if (relations.redacts !== undefined)
          await this.client.redact(room, relations.redacts, txnIdFor(delivery.id, 0), ghost);
        return undefined;
      case "reaction.removed":
        await this.removeReaction(delivery, relations, room, ghost);
        return undefined;
      default:
        break;
    }
    await this.enter(room, ghost);
    const uploaded = await this.upload(event, ghost);
    const shown = delivery.marking;
    const contents = toMatrixContent(
      shown === undefined ? { ...event, marking: undefined } : { ...event, marking: shown.id },
      relations,
      { uploaded, markingLabel: () => shown?.label ?? "" },
    );
    const posted =
      contents.length === 0 ? new Map<string, string>() : await this.postedBefore(delivery, room, ghost);
    const ids: string[] = [];
    for (const [index, content] of contents.entries()) {
      const txnId = txnIdFor(delivery.id, index);
      ids.push(posted.get(txnId) ?? (await this.sendAs(ghost, room, content, txnId)));
    }
    const [first, ...rest] = ids;
    if (first === undefined) return undefined;
    if (event.type === "reaction.added") {
      await this.state.put(
        sentReactionKey(room, relations.reactsTo, ghost, event.content?.reaction),
        encodeJson(first),
      );
      return undefined;
    }
    return { id: first, aliases: rest };
  }

  private async removeReaction(
    delivery: Delivery,
    relations: NativeRelations,
    room: string,
    ghost: string,
  ): Promise<void> {
    const key = sentReactionKey(room, relations.reactsTo, ghost, delivery.event.content?.reaction);
    const entry = await this.state.get(key);
    if (entry === undefined) return;
    await this.client.redact(room, decodeJson(entry.value) as string, txnIdFor(delivery.id, 0), ghost);
    await this.state.delete(key);
  }

  /** Uploads the event's files as the ghost; a file that cannot be carried is named in the text instead. */
  private async upload(event: NormalisedEvent, ghost: string): Promise<Map<string, string>> {
    if (event.type !== "message.created") return new Map();
    const { carried } = await carryAttachments(
      event,
      async (attachment) => {
        const bytes = await fetchAttachment(attachment, attachmentFetchOptions(this.config.attachments));
        return await this.client.uploadMedia(bytes, attachment.mediaType, attachment.name, ghost);
      },
      this.log,
      "Matrix",
    );
    // What is not in the map is named in the text (toMatrixContent).
    return new Map(carried.map((c) => [c.attachment.url, c.result]));
  }

  /** The ghost of the delivery's sender: registered, named "Name (Agency)", and known as who it stands for. */
  private async ghostFor(delivery: Delivery): Promise<string> {
    const { event, senderAgency } = delivery;
    const remote = { network: event.source.network, instance: event.source.instance };
    const ghost = ghostUserId(this.naming, { ...remote, userId: event.sender.userId });
    const name = puppetName(delivery);
    const avatar = event.sender.avatarUrl;
    const profile = `${name}\n${avatar ?? ""}`;
    if (this.profiles.get(ghost) !== profile) {
      await this.client.registerUser(localpartOf(ghost));
      // Setting a name announces it in every room the ghost is in: only when it changed, not on every start.
      if ((await this.client.getProfile(ghost)).displayname !== name)
        await this.client.setDisplayName(ghost, name);
      if (avatar !== undefined) await this.setAvatar(ghost, avatar);
      this.profiles.set(ghost, profile);
    }
    await this.runtime.identities.record(
      {
        ...event.sender,
        ...remote,
        ...(senderAgency === undefined ? {} : { agency: senderAgency.id, agencyName: senderAgency.name }),
      },
      { network: NETWORK, instance: this.config.instance, userId: ghost },
    );
    return ghost;
  }

  /**
   * Gives the ghost the picture its person has elsewhere, once per picture link (remembered across
   * restarts). A picture is a courtesy: one that cannot be fetched is logged, and the message still goes.
   */
  private async setAvatar(ghost: string, url: string): Promise<void> {
    const key = `avatar.${keyToken(ghost)}`;
    const entry = await this.state.get(key);
    if (entry !== undefined && decodeJson(entry.value) === url) return;
    try {
      const limits = attachmentFetchOptions(this.config.attachments);
      const { bytes, mediaType } = await fetchFile(url, {
        ...limits,
        maxBytes: Math.min(limits.maxBytes, MAX_AVATAR_BYTES),
      });
      if (!mediaType.startsWith("image/"))
        throw new PermanentError("FG_ATTACHMENT_INVALID", `the picture is ${mediaType}, not an image`);
      await this.client.setAvatarUrl(ghost, await this.client.uploadMedia(bytes, mediaType, "avatar", ghost));
      await this.state.put(key, encodeJson(url));
    } catch (error) {
      this.log.warn({ err: error, ghost }, "ghost's picture not set");
    }
  }

  /** The room a delivery goes to: the linked room, or the direct chat's room, opened by the ghost if new. */
  private async roomOf(delivery: Delivery, ghost: string | undefined): Promise<string> {
    const { target } = delivery;
    if ((target.kind ?? "room") === "room") return target.conversation;
    const known = await this.state.get(`direct.chat.${keyToken(target.conversation)}`);
    const remembered = known === undefined ? undefined : (decodeJson(known.value) as string);
    // A shared room is never a direct chat's, however it came to be remembered as one: a new room is opened.
    if (remembered !== undefined && !this.isSharedRoom(remembered)) return remembered;
    const direct = parseDirectConversation(target.conversation);
    if (direct === undefined || !direct.participant.startsWith("@") || ghost === undefined)
      throw new PermanentError(
        "FG_EVENT_INVALID",
        `${target.conversation} is not a direct chat of this server`,
      );
    const room = await this.client.createRoom(
      { is_direct: true, invite: [direct.participant], preset: "trusted_private_chat" },
      ghost,
    );
    this.present.set(`${room} ${ghost}`, true);
    await this.rememberDirect(room, target.conversation);
    this.log.info({ room, participant: direct.participant }, "direct chat room opened by a ghost");
    return room;
  }

  private async isMember(room: string, user: string): Promise<boolean> {
    return (await this.client.joinedMembers(room)).includes(user);
  }

  /**
   * Puts the ghost in the room: it joins, and where the room is invite-only, the bot invites it first.
   * A homeserver's M_FORBIDDEN is the room's policy: a permanent refusal, not something to retry.
   */
  private async enter(room: string, ghost: string): Promise<void> {
    const key = `${room} ${ghost}`;
    if (this.present.get(key) !== undefined) return;
    try {
      await this.client.joinRoom(room, ghost);
    } catch (error) {
      if (matrixErrcode(error) !== "M_FORBIDDEN") throw error;
      await this.client.invite(room, ghost);
      await this.client.joinRoom(room, ghost);
    }
    this.present.set(key, true);
  }

  /** Sends as the ghost, with the transaction id in the content (see postedBefore). */
  private sendAs(ghost: string, room: string, content: MatrixContent, txnId: string): Promise<string> {
    const marked = { ...content.content, [POSTED_MARKER]: txnId };
    return this.asMember(room, ghost, () => this.client.sendEvent(room, content.type, marked, txnId, ghost));
  }

  /**
   * Acts as the ghost in the room. Refused because the ghost is no longer in it (kicked a moment ago, before
   * the homeserver told the bridge), it enters again once and retries; refused again, the refusal stands.
   */
  private async asMember<T>(room: string, ghost: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      if (matrixErrcode(error) !== "M_FORBIDDEN") throw error;
      this.present.delete(`${room} ${ghost}`);
      await this.enter(room, ghost);
      return action();
    }
  }

  /**
   * What an earlier attempt at this delivery posted in the room: event ids by transaction id. Synapse
   * answers a repeated transaction id with the first event only until it restarts, so a delivery handled
   * again (its ack lost, the bridge restarted, a retry after an answer that never came) would post twice.
   * Before a delivery posts, the bridge notes it as the one underway in its conversation; a delivery found
   * noted already was attempted before, and its events are looked for, by their content's marker, among the
   * sender's latest in the room. Only the sender's events count: anyone in the room can write a marker.
   */
  private async postedBefore(delivery: Delivery, room: string, sender: string): Promise<Map<string, string>> {
    const posted = new Map<string, string>();
    if (!(await attemptedBefore(this.state, delivery))) return posted;
    const asUser = sender === this.bot ? undefined : sender;
    const read = (): Promise<Record<string, unknown>[]> =>
      this.client.latestEventsBy(room, sender, POSTED_LOOKBACK, asUser);
    const events = asUser === undefined ? await read() : await this.asMember(room, asUser, read);
    for (const event of events) {
      const marker = isRecord(event["content"]) ? event["content"][POSTED_MARKER] : undefined;
      const eventId = event["event_id"];
      if (typeof marker === "string" && typeof eventId === "string" && isEventId(eventId))
        posted.set(marker, eventId);
    }
    this.log.info(
      { deliveryId: delivery.id, room, found: posted.size },
      "delivery handled again; looked in the room for what it posted before",
    );
    return posted;
  }

  // ---------------------------------------------------------------- the bot's words

  /**
   * The bot's notice in a room, answering `inReplyTo` when given. A notice tied to something (an event it
   * answers, a delivery) has a transaction id derived from it, so that a retry says it once.
   */
  private async say(
    room: string,
    text: string,
    tie: { inReplyTo?: string; txnId?: string } = {},
  ): Promise<void> {
    const { inReplyTo } = tie;
    const content: Record<string, unknown> = { msgtype: "m.notice", body: text };
    if (inReplyTo !== undefined) content["m.relates_to"] = { "m.in_reply_to": { event_id: inReplyTo } };
    if (tie.txnId !== undefined) content[POSTED_MARKER] = tie.txnId;
    const txnId =
      tie.txnId ?? (inReplyTo === undefined ? randomUUID() : txnIdFor(`say ${inReplyTo} ${text}`, 0));
    await this.client.sendEvent(room, EventType.message, content, txnId);
  }

  /**
   * Says something in a room once ever, across restarts and however many events call for it at once: the
   * note is created before the notice is sent (and taken back if it cannot be), so only one caller says it.
   */
  private async sayOnce(room: string, what: string, text: string): Promise<void> {
    const key = `said.${what}.${keyToken(room)}`;
    try {
      await this.state.create(key, encodeJson(new Date().toISOString()));
    } catch (error) {
      if (error instanceof KeyExistsError) return;
      throw error;
    }
    try {
      await this.say(room, text);
    } catch (error) {
      await this.state.delete(key).catch((cause: unknown) => {
        this.log.warn({ err: cause, room, what }, "cannot take back the note of a notice not said");
      });
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.server?.close();
    await this.runtime.close();
  }
}

const LINK_USAGE = "`!fedgate link <join code>`";

const HELP = `fedgate bridges this room to other agencies' messengers. Room moderators: ${LINK_USAGE} joins this room to a link, with a one-time code from your fedgate administrator; \`!fedgate unlink\` takes it out.`;

const SHARED_ROOM_REFUSAL =
  "a direct chat is a room of exactly two people, and this room is shared (linked, with the fedgate bot, another chat's, or with someone else invited)";

const DIRECT_ENDED_NOTICE =
  "Someone else was invited to this room, so it is no longer a private chat: fedgate stopped bridging it. Start a new direct chat to write privately again.";

const ENCRYPTED_REFUSAL = "it is end-to-end encrypted, and fedgate cannot read encrypted messages";

const ENCRYPTED_NOTICE =
  "This room is end-to-end encrypted. fedgate cannot read encrypted messages, so nothing from this room is bridged any more.";

function isCommand(event: MatrixEvent): boolean {
  const body = event.content["body"];
  return (
    event.type === EventType.message &&
    typeof body === "string" &&
    (body === COMMAND || body.startsWith(`${COMMAND} `))
  );
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

/** The topic with the marking leading in brackets, replacing any the bridge put there before. */
export function withTopicMarking(topic: string, marking: string | undefined): string {
  const rest = topic.replace(/^\[[A-Z0-9-]+\]\s*/, "");
  return marking === undefined ? rest : `[${marking}] ${rest}`.trimEnd();
}

/** A Matrix transaction id for a delivery's n-th call: a retried delivery repeats it, and posts nothing twice. */
function txnIdFor(deliveryId: string, index: number): string {
  return `fg${createHash("sha256").update(deliveryId).digest("base64url").slice(0, 32)}.${String(index)}`;
}

function sentReactionKey(
  room: string,
  target: string | undefined,
  ghost: string,
  key: string | undefined,
): string {
  const digest = createHash("sha256")
    .update([room, target ?? "", ghost, key ?? ""].join("\0"))
    .digest("base64url");
  return `reaction.out.${digest}`;
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
