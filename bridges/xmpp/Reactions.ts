/**
 * Reactions (XEP-0444) both ways. XEP-0444 sends a user's whole set of reactions on a message; the other
 * networks add and remove one at a time. The set each user (native or puppet) has on each message is kept
 * in the bridge's state, and the difference translated.
 */
import type { Logger } from "pino";
import type { Delivery } from "../../schemas/types.js";
import {
  decodeJson,
  encodeJson,
  keyToken,
  type KeyValueStore,
} from "../../gateway/platform/bus/KeyValueStore.js";
import type { AdapterRuntime } from "../kit/AdapterRuntime.js";
import type { NativeChat } from "./NativePublisher.js";
import { MAX_REACTIONS } from "./toNormalisedEvent.js";
import { toReactions, type MessageAddress } from "./toStanza.js";
import type { XmppComponent } from "./XmppComponent.js";

export interface ReactionsDeps {
  /** The bridge's own state, which keeps each user's set on each message. */
  state: KeyValueStore;
  runtime: Pick<AdapterRuntime, "publish" | "eventIdOf">;
  instance: string;
  component: Pick<XmppComponent, "send">;
  log: Logger;
}

export class Reactions {
  constructor(private readonly deps: ReactionsDeps) {}

  /** Publishes a native user's new set of reactions on a message as the reactions added and removed. */
  async publish(
    chat: NativeChat,
    reactsTo: string,
    reactions: { to: string; keys: string[] },
  ): Promise<void> {
    const { runtime, instance } = this.deps;
    const dedupeId = chat.dedupeId ?? chat.onceId;
    await this.swap(
      chat.conversation,
      reactions.to,
      chat.sender.userId,
      () => reactions.keys,
      async (before, after) => {
        const changes = [
          ...after.filter((k) => !before.includes(k)).map((k) => ["reaction.added", k] as const),
          ...before.filter((k) => !after.includes(k)).map((k) => ["reaction.removed", k] as const),
        ];
        for (const [type, reaction] of changes) {
          await runtime.publish({
            specVersion: "1",
            id: runtime.eventIdOf(chat.conversation, dedupeId, type, reaction),
            type,
            source: { network: "xmpp", instance, conversation: chat.conversation },
            sender: chat.sender,
            content: { reaction },
            relations: { reactsTo },
            timestamp: new Date().toISOString(),
          });
        }
      },
    );
  }

  /**
   * Sends a reaction added or removed by a remote person as their puppet's new set on the message
   * `reactingTo`, from `address`.
   */
  async deliver(
    delivery: Delivery,
    reaction: string,
    reactingTo: string,
    puppet: string,
    address: MessageAddress,
  ): Promise<void> {
    const { event, target } = delivery;
    await this.swap(
      target.conversation,
      reactingTo,
      puppet,
      (current) => {
        if (event.type === "reaction.removed") return current.filter((k) => k !== reaction);
        const added = [...new Set([...current, reaction])];
        return added.length > MAX_REACTIONS ? current : added;
      },
      async (_before, after) => {
        if (!after.includes(reaction) && event.type === "reaction.added") {
          // Each change sends the puppet's whole set: without a bound, every one would grow the stanza.
          this.deps.log.warn(
            { eventId: event.id, conversation: target.conversation },
            `reaction not bridged: its sender has ${MAX_REACTIONS} on this message already, as many as the bridge carries`,
          );
          return;
        }
        await this.deps.component.send(toReactions(address, reactingTo, after));
      },
    );
  }

  /**
   * Changes the set `user` has on a message: `apply` carries the difference, and only then is the new set
   * kept, so that a retry after a failure in `apply` finds the same difference again. Resolves with the new
   * set.
   */
  private async swap(
    conversation: string,
    messageId: string,
    user: string,
    change: (current: string[]) => string[],
    apply: (before: string[], after: string[]) => Promise<void>,
  ): Promise<string[]> {
    const { state } = this.deps;
    const key = `reactions.${keyToken(conversation)}.${keyToken(messageId)}.${keyToken(user)}`;
    const entry = await state.get(key);
    const before = entry === undefined ? [] : (decodeJson(entry.value) as string[]);
    const after = change(before);
    await apply(before, after);
    await state.put(key, encodeJson(after));
    return after;
  }
}
