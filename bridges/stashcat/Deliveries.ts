/**
 * Deliveries as the service account: what the core delivers is encrypted for the chat and posted with the
 * sender's name and agency leading the text; a deletion deletes, and reactions from elsewhere are the
 * account's like. Each posted message carries a marker of its delivery, so that a delivery handled again
 * finds what it posted before and posts nothing twice.
 */
import { createHash } from "node:crypto";
import type { Delivery, NormalisedEvent } from "../../schemas/types.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { NativeRelations } from "../kit/AdapterRuntime.js";
import { carryAttachments } from "../kit/carryAttachments.js";
import { attachmentFetchOptions, fetchAttachment } from "../kit/fetchAttachment.js";
import { isGatewayNotice } from "../kit/isGatewayNotice.js";
import type { ChatKeys } from "./ChatKeys.js";
import { chatConversation } from "./chatConversations.js";
import type { StashcatBridgeConfig } from "./config.types.js";
import { encryptBytes, encryptText, newKey } from "./crypto.js";
import type { DirectChats } from "./DirectChats.js";
import type { ChatRef } from "./messages.js";
import type { Outbox } from "./Outbox.js";
import type { OwnActionStore } from "./OwnActionStore.js";
import type { StashcatClient } from "./StashcatClient.js";
import { toStashcatText } from "./toStashcatText.js";

/** The bridge's latest messages in a chat searched for a delivery posted before a crash. */
const POSTED_SEARCH = 100;

export interface DeliveriesDeps {
  client: Pick<
    StashcatClient,
    "userId" | "send" | "messages" | "deleteMessage" | "like" | "unlike" | "uploadFile" | "setFileAccessKey"
  >;
  chatKeys: Pick<ChatKeys, "of">;
  directChats: Pick<DirectChats, "chatOf">;
  ownActions: Pick<OwnActionStore, "noteDeleted" | "likesOf" | "setLikes">;
  outbox: Pick<Outbox, "begin">;
  log: Logger;
}

export class Deliveries {
  constructor(
    private readonly config: Pick<StashcatBridgeConfig, "attachments">,
    private readonly deps: DeliveriesDeps,
  ) {}

  async deliver(delivery: Delivery, relations: NativeRelations): Promise<string | undefined> {
    const { client, chatKeys, directChats, ownActions } = this.deps;
    const { event } = delivery;
    const chat = await directChats.chatOf(delivery);
    const ownNotice = isGatewayNotice(delivery);
    switch (event.type) {
      case "message.deleted":
        if (relations.redacts !== undefined) {
          const messageId = Number(relations.redacts);
          // Noted first, so that the deletion Stashcat pushes back is known as the bridge's own.
          await ownActions.noteDeleted(messageId);
          await client.deleteMessage(messageId);
        }
        return undefined;
      case "reaction.added":
      case "reaction.removed":
        if (relations.reactsTo !== undefined)
          await this.changeLike(Number(relations.reactsTo), event.type === "reaction.added");
        return undefined;
      default:
        break;
    }
    const files =
      event.type === "message.created" ? await this.uploadFiles(event, chat) : { ids: [], missing: [] };
    const text = toStashcatText(delivery, { fromGateway: ownNotice, missingFiles: files.missing });
    const replyTo = relations.replyTo ?? relations.replaces;
    const sealed = encryptText(text, await chatKeys.of(chat));
    const marker = deliveryMarker(delivery.id);
    const postedBefore = await this.postedBefore(delivery.id, chat, marker);
    if (postedBefore !== undefined) return String(postedBefore);
    const sent = await client.send(chat, {
      verification: marker,
      text: sealed.text,
      iv: sealed.iv,
      encrypted: true,
      fileIds: files.ids,
      markdown: true,
      ...(replyTo === undefined ? {} : { replyTo: Number(replyTo) }),
    });
    return String(sent.id);
  }

  /**
   * The message a delivery became when it was handled before and the bridge died before its ack (or its
   * record): found by the delivery's marker among the account's latest messages in the chat. The first
   * handling notes the delivery in the outbox, so only a second one searches.
   */
  private async postedBefore(deliveryId: string, chat: ChatRef, marker: string): Promise<number | undefined> {
    const { client, outbox, log } = this.deps;
    if (await outbox.begin(deliveryId, marker)) return undefined;
    const recent = await client.messages(chat, { limit: POSTED_SEARCH });
    const found = recent.find((m) => m.senderId === client.userId && m.verification === marker);
    if (found !== undefined)
      log.info({ chat: chatConversation(chat), messageId: found.id }, "Stashcat delivery was posted before");
    return found?.id;
  }

  /** Likes by the service account stand for every remote reaction: liked while any remains. */
  private async changeLike(messageId: number, added: boolean): Promise<void> {
    const { client, ownActions } = this.deps;
    const before = await ownActions.likesOf(messageId);
    const after = Math.max(0, before + (added ? 1 : -1));
    if (before === 0 && after > 0) await client.like(messageId);
    if (before > 0 && after === 0) await client.unlike(messageId);
    await ownActions.setLikes(messageId, after);
  }

  /** Files are encrypted with a key of their own, which is sealed for the chat (Stashcat's file-key scheme). */
  private async uploadFiles(
    event: NormalisedEvent,
    chat: ChatRef,
  ): Promise<{ ids: number[]; missing: string[] }> {
    const { client, chatKeys, log } = this.deps;
    const { carried, notCarried } = await carryAttachments(
      event,
      async (attachment) => {
        const bytes = await fetchAttachment(attachment, attachmentFetchOptions(this.config.attachments));
        const fileKey = newKey();
        const sealed = encryptBytes(bytes, fileKey);
        const fileId = await client.uploadFile(chat, {
          name: attachment.name,
          mediaType: attachment.mediaType,
          data: sealed.data,
          iv: sealed.iv.toString("hex"),
        });
        const wrapped = encryptBytes(fileKey, await chatKeys.of(chat));
        await client.setFileAccessKey(fileId, chat, wrapped.data.toString("hex"), wrapped.iv.toString("hex"));
        return fileId;
      },
      log,
      "Stashcat",
    );
    return {
      ids: carried.map((c) => c.result),
      missing: notCarried.map((n) => n.attachment.name),
    };
  }
}

/**
 * What marks the message a delivery became, in its `verification` (where Stashcat's web client puts an MD5
 * checksum of its own, so that it looks like one): the same for every handling of the delivery.
 */
function deliveryMarker(deliveryId: string): string {
  return createHash("md5").update(`fedgate delivery\0${deliveryId}`).digest("hex");
}
