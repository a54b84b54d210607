/**
 * Deliveries as ghosts: what the core delivers is posted in the room by the ghost of its sender, or said by
 * the bot when it is the gateway's own notice. Each Matrix call carries a transaction id derived from the
 * delivery, and each posted event that id in its content, so that a delivery handled again finds what it
 * posted before and posts nothing twice.
 */
import type { Delivery, NormalisedEvent } from "../../schemas/types.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import type { NativeMessage, NativeRelations } from "../kit/AdapterRuntime.js";
import { attemptedBefore } from "../kit/attemptedBefore.js";
import { carryAttachments } from "../kit/carryAttachments.js";
import { attachmentFetchOptions, fetchAttachment } from "../kit/fetchAttachment.js";
import { isGatewayNotice } from "../kit/isGatewayNotice.js";
import type { BotNotices } from "./BotNotices.js";
import type { MatrixAttachments } from "./config.types.js";
import type { DirectChats } from "./DirectChats.js";
import type { GhostUsers } from "./GhostUsers.js";
import type { MatrixClient } from "./MatrixClient.js";
import { isRecord } from "../kit/isRecord.js";
import { isEventId } from "./matrixIds.js";
import type { MatrixInstance } from "./matrixInstance.js";
import type { ReactionStore, SentReaction } from "./ReactionStore.js";
import type { RoomGuard } from "./RoomGuard.js";
import { toMatrixContent, type MatrixContent, type UploadedFile } from "./toMatrixContent.js";
import { encryptAttachment, encryptedFile } from "./crypto/encryptedAttachment.js";
import type { EncryptedSender } from "./EncryptedSender.js";
import { POSTED_MARKER, txnIdFor } from "./transactionIds.js";

/**
 * How many of its latest events in the room a sender's retried delivery looks through. Deliveries to a
 * conversation go out one at a time, so the ones it looks for are among the last few the sender posted.
 */
const POSTED_LOOKBACK = 50;

export interface DeliveriesDeps {
  self: MatrixInstance;
  client: Pick<MatrixClient, "redact" | "uploadMedia" | "latestEventsBy">;
  ghosts: Pick<GhostUsers, "ghostFor" | "enter" | "leave" | "sendAs" | "asMember">;
  directChats: Pick<DirectChats, "roomOf">;
  guard: Pick<RoomGuard, "refusal">;
  /** What ghosts say in encrypted rooms, encrypted by their devices; only with encryption enabled. */
  encrypted?: Pick<EncryptedSender, "send" | "encrypts">;
  reactions: ReactionStore;
  notices: Pick<BotNotices, "say">;
  state: KeyValueStore;
  log: Logger;
}

export class Deliveries {
  constructor(
    private readonly config: { attachments: MatrixAttachments & { maxBytes: number } },
    private readonly deps: DeliveriesDeps,
  ) {}

  async deliver(delivery: Delivery, relations: NativeRelations): Promise<NativeMessage | undefined> {
    const { self, client, ghosts, guard, reactions, notices } = this.deps;
    const { event } = delivery;
    // A delivery back into the conversation its event came from is the gateway's own notice: the bot says it.
    if (isGatewayNotice(delivery)) {
      const room = await this.roomOf(delivery, undefined);
      const txnId = txnIdFor(delivery.id, 0);
      const posted = await this.postedBefore(delivery, room, self.bot);
      if (!posted.has(txnId)) await notices.say(room, event.content?.body ?? "", { txnId });
      return undefined;
    }
    const ghost = await ghosts.ghostFor(delivery);
    const room = await this.roomOf(delivery, ghost);
    const refusal = guard.refusal(room);
    if (refusal !== undefined)
      throw new PermanentError("FG_PEER_REFUSED", `room ${room} is not bridged: ${refusal}`);
    switch (event.type) {
      case "member.left":
        await ghosts.leave(room, ghost);
        return undefined;
      case "member.joined":
        await ghosts.enter(room, ghost);
        return undefined;
      case "message.deleted":
        if (relations.redacts !== undefined)
          await client.redact(room, relations.redacts, txnIdFor(delivery.id, 0), ghost);
        return undefined;
      case "reaction.removed":
        await this.removeReaction(delivery, sentReaction(delivery, relations, room, ghost));
        return undefined;
      default:
        break;
    }
    await ghosts.enter(room, ghost);
    const uploaded = await this.upload(event, ghost, room);
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
      ids.push(posted.get(txnId) ?? (await this.send(ghost, room, content, txnId)));
    }
    const [first, ...rest] = ids;
    if (first === undefined) return undefined;
    if (event.type === "reaction.added") {
      await reactions.rememberSent(sentReaction(delivery, relations, room, ghost), first);
      return undefined;
    }
    return { id: first, aliases: rest };
  }

  /** Posts one event as the ghost: encrypted in an encrypted room (with encryption enabled). */
  private async send(ghost: string, room: string, content: MatrixContent, txnId: string): Promise<string> {
    const { ghosts, encrypted } = this.deps;
    if (encrypted === undefined) return ghosts.sendAs(ghost, room, content, txnId);
    const sent = await ghosts.asMember(room, ghost, () =>
      encrypted.send(ghost, room, content.type, content.content, txnId),
    );
    return sent ?? (await ghosts.sendAs(ghost, room, content, txnId));
  }

  private async removeReaction(delivery: Delivery, reaction: SentReaction): Promise<void> {
    const { client, reactions } = this.deps;
    const sent = await reactions.sent(reaction);
    if (sent === undefined) return;
    await client.redact(reaction.room, sent, txnIdFor(delivery.id, 0), reaction.ghost);
    await reactions.forgetSent(reaction);
  }

  /**
   * Uploads the event's files as the ghost; a file that cannot be carried is named in the text instead. In
   * an encrypted room each is an encrypted attachment: the homeserver gets ciphertext under no name or type
   * of its own, and the key goes in the encrypted event.
   */
  private async upload(
    event: NormalisedEvent,
    ghost: string,
    room: string,
  ): Promise<Map<string, UploadedFile>> {
    if (event.type !== "message.created" || (event.content?.attachments ?? []).length === 0) return new Map();
    const { client, ghosts, encrypted, log } = this.deps;
    const encrypts =
      encrypted !== undefined && (await ghosts.asMember(room, ghost, () => encrypted.encrypts(ghost, room)));
    const { carried } = await carryAttachments(
      event,
      async (attachment): Promise<UploadedFile> => {
        const bytes = await fetchAttachment(attachment, attachmentFetchOptions(this.config.attachments));
        if (!encrypts) return await client.uploadMedia(bytes, attachment.mediaType, attachment.name, ghost);
        const { ciphertext, keys } = encryptAttachment(bytes);
        const mxc = await client.uploadMedia(ciphertext, "application/octet-stream", "file", ghost);
        return encryptedFile(mxc, keys);
      },
      log,
      "Matrix",
    );
    // What is not in the map is named in the text (toMatrixContent).
    return new Map(carried.map((c) => [c.attachment.url, c.result]));
  }

  /** The room a delivery goes to: the linked room, or the direct chat's room, opened by the ghost if new. */
  private async roomOf(delivery: Delivery, ghost: string | undefined): Promise<string> {
    const { target } = delivery;
    if ((target.kind ?? "room") === "room") return target.conversation;
    return this.deps.directChats.roomOf(target.conversation, ghost);
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
    const { self, client, ghosts, state, log } = this.deps;
    const posted = new Map<string, string>();
    if (!(await attemptedBefore(state, delivery))) return posted;
    const asUser = sender === self.bot ? undefined : sender;
    const read = (): Promise<Record<string, unknown>[]> =>
      client.latestEventsBy(room, sender, POSTED_LOOKBACK, asUser);
    const events = asUser === undefined ? await read() : await ghosts.asMember(room, asUser, read);
    for (const event of events) {
      const marker = isRecord(event["content"]) ? event["content"][POSTED_MARKER] : undefined;
      const eventId = event["event_id"];
      if (typeof marker === "string" && typeof eventId === "string" && isEventId(eventId))
        posted.set(marker, eventId);
    }
    log.info(
      { deliveryId: delivery.id, room, found: posted.size },
      "delivery handled again; looked in the room for what it posted before",
    );
    return posted;
  }
}

/** The reaction a delivery adds or removes, as the ghost sends it in the room. */
function sentReaction(
  delivery: Delivery,
  relations: NativeRelations,
  room: string,
  ghost: string,
): SentReaction {
  return { room, reactsTo: relations.reactsTo, ghost, key: delivery.event.content?.reaction };
}
