/** Messages native users write to a puppet: direct chats with the remote people the puppets stand for. */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { PermanentError, TransientError } from "../../schemas/contract/errors.js";
import type { RemoteUser } from "../../gateway/platform/stores/IdentityStore.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import type { AdapterRuntime } from "../kit/AdapterRuntime.js";
import type { InputQueue } from "../kit/InputQueue.js";
import { openDirectChat } from "../kit/openDirectChat.js";
import { NotStoredError } from "../kit/untilStored.js";
import type { XmppBridgeConfig } from "./config.types.js";
import { bareJid, isAllowedUser } from "./jids.js";
import type { NativePublisher } from "./NativePublisher.js";
import type { RecentMessages } from "./RecentMessages.js";
import { notTakenInTime, type Refusals } from "./refusals.js";
import type { Stored } from "./stored.js";
import { idsOf, nickOf, reactionsOf, referencesOf } from "./toNormalisedEvent.js";
import type { XmlElement } from "./XmppComponent.js";

export interface DirectInboundDeps {
  config: Pick<XmppBridgeConfig, "instance" | "userDomains" | "agency">;
  /** How many direct messages may wait for the bus (storeRetry.maxWaiting). */
  maxWaiting: number;
  /** Each direct chat's queue, by "<native user> <puppet>". */
  perDirect: InputQueue;
  stored: Stored;
  links: LinkStore;
  runtime: Pick<AdapterRuntime, "identities">;
  publisher: Pick<NativePublisher, "publish">;
  refusals: Pick<Refusals, "refuseOnce">;
  recent: Pick<RecentMessages, "rememberText">;
  log: Logger;
}

export class DirectInbound {
  constructor(private readonly deps: DirectInboundDeps) {}

  /**
   * A message a native user wrote to a puppet: a direct chat with the remote person the puppet stands for.
   * The first one opens the chat: a link between this user and that person, of this server's agency and
   * theirs, which the policy then judges message by message.
   */
  receive(stanza: XmlElement, puppetFullJid: string): void {
    const { refusals, config } = this.deps;
    const from = stanza.attrs["from"] ?? "";
    const puppet = bareJid(puppetFullJid);
    const refusal = { from: puppetFullJid, to: from };
    // Typing notifications, receipts and the like carry nothing to bridge, and must not open a chat.
    if (!carriesContent(stanza)) return;
    const onceId = randomUUID();
    const publish = async (): Promise<void> => {
      const remote = await this.remoteBehind(puppet);
      const conversation = await this.openDirect(bareJid(from), remote);
      const ids = idsOf(stanza, conversation);
      const displayName = nickOf(stanza) ?? bareJid(from).split("@")[0] ?? from;
      if (ids.originId !== undefined)
        this.deps.recent.rememberText(conversation, ids.originId, stanza, displayName, bareJid(from));
      await this.deps.publisher.publish(stanza, {
        conversation,
        sender: { userId: bareJid(from), displayName },
        refusal,
        // Only this user writes natively in this conversation: their id for the message is unique here.
        dedupeId: ids.originId,
        onceId,
        ids,
      });
    };
    // No archive keeps a direct chat for the bridge: its messages wait for the bus, and the sender is told
    // if they finally do not get there.
    if (!isAllowedUser(from, config.userDomains) || !from.includes("@")) {
      void refusals.refuseOnce(
        stanza,
        refusal,
        new PermanentError("FG_NATIVE_INVALID", `${bareJid(from)} is outside the configured user domains`, {
          detail: { condition: "forbidden" },
        }),
      );
      return;
    }
    const queued = this.deps.perDirect.offer(`${bareJid(from)} ${puppet}`, async () => {
      try {
        await this.deps.stored(publish, { from: bareJid(from), puppet });
      } catch (error) {
        await refusals.refuseOnce(
          stanza,
          refusal,
          error instanceof NotStoredError ? notTakenInTime(error) : error,
        );
      }
    });
    if (!queued) {
      void refusals.refuseOnce(
        stanza,
        refusal,
        new TransientError(
          "FG_BUS_UNAVAILABLE",
          "too many messages wait for the gateway; send it again later",
          {
            detail: { waiting: this.deps.maxWaiting },
          },
        ),
      );
    }
  }

  /** The remote person a puppet stands for; an unknown puppet is an item-not-found for the sender. */
  private async remoteBehind(puppet: string): Promise<RemoteUser & { agency: string }> {
    const remote = await this.deps.runtime.identities.remoteFor({
      network: "xmpp",
      instance: this.deps.config.instance,
      userId: puppet,
    });
    if (remote?.agency === undefined) {
      throw new PermanentError("FG_NATIVE_INVALID", `${puppet} stands for no one fedgate knows`, {
        detail: { condition: "item-not-found" },
      });
    }
    return { ...remote, agency: remote.agency };
  }

  /** The direct conversation between a native user and a remote person, linked on first use. */
  private openDirect(native: string, remote: RemoteUser & { agency: string }): Promise<string> {
    const { config, links, log } = this.deps;
    const nativeUser = { network: "xmpp", instance: config.instance, userId: native };
    return openDirectChat(links, nativeUser, config.agency, remote, log, {
      condition: "service-unavailable",
    });
  }
}

/** Whether a direct message carries anything to bridge (not only a chat state or a receipt). */
function carriesContent(stanza: XmlElement): boolean {
  if (stanza.getChild("body") !== undefined) return true;
  try {
    return reactionsOf(stanza) !== undefined || referencesOf(stanza).retracts !== undefined;
  } catch {
    // An id too long to read: it is refused, and its sender told, where messages are handled.
    return true;
  }
}
