/** The bot's words in a room: notices answering an event, tied to a delivery, or said once ever. */
import { randomUUID } from "node:crypto";
import type { Logger } from "../../gateway/platform/log.js";
import type { MatrixClient } from "./MatrixClient.js";
import type { EncryptedSender } from "./EncryptedSender.js";
import { EventType } from "./matrixEvents.js";
import type { OnceNotice, SaidOnceStore } from "./SaidOnceStore.js";
import { POSTED_MARKER, txnIdFor } from "./transactionIds.js";

export class BotNotices {
  constructor(
    private readonly client: Pick<MatrixClient, "sendEvent">,
    private readonly saidOnce: SaidOnceStore,
    private readonly log: Logger,
    /** The bot, and its words in encrypted rooms encrypted by its device; only with encryption enabled. */
    private readonly encrypted?: { bot: string; sender: Pick<EncryptedSender, "send"> },
  ) {}

  /**
   * The bot's notice in a room, answering `inReplyTo` when given. A notice tied to something (an event it
   * answers, a delivery) has a transaction id derived from it, so that a retry says it once.
   */
  async say(room: string, text: string, tie: { inReplyTo?: string; txnId?: string } = {}): Promise<void> {
    const { inReplyTo } = tie;
    const content: Record<string, unknown> = { msgtype: "m.notice", body: text };
    if (inReplyTo !== undefined) content["m.relates_to"] = { "m.in_reply_to": { event_id: inReplyTo } };
    if (tie.txnId !== undefined) content[POSTED_MARKER] = tie.txnId;
    const txnId =
      tie.txnId ?? (inReplyTo === undefined ? randomUUID() : txnIdFor(`say ${inReplyTo} ${text}`, 0));
    // In an encrypted room the bot's words are encrypted too: a notice may quote what was refused.
    const sent = await this.encrypted?.sender.send(
      this.encrypted.bot,
      room,
      EventType.message,
      content,
      txnId,
    );
    if (sent === undefined) await this.client.sendEvent(room, EventType.message, content, txnId);
  }

  /**
   * Says something in a room once ever, across restarts and however many events call for it at once: the
   * note is created before the notice is sent (and taken back if it cannot be), so only one caller says it.
   */
  async sayOnce(room: string, what: OnceNotice, text: string): Promise<void> {
    if (!(await this.saidOnce.claim(room, what))) return;
    try {
      await this.say(room, text);
    } catch (error) {
      await this.saidOnce.release(room, what).catch((cause: unknown) => {
        this.log.warn({ err: cause, room, what }, "cannot take back the note of a notice not said");
      });
      throw error;
    }
  }
}
