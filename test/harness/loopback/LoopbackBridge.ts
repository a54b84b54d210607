/**
 * A minimal adapter on the kit, for the in-memory loopback network: what docs/adding-a-network.md shows, and
 * what the conformance scenarios run against first. Native messages become events; deliveries become
 * messages posted as "Name (Agency)"; while it was away, what was said is caught up from the history.
 */
import type { Logger } from "pino";
import type { Delivery, NormalisedEvent } from "../../../schemas/types.js";
import type { Bus } from "../../../gateway/platform/bus/Bus.js";
import {
  type AdapterRuntime,
  type NativeRelations,
  type Unsupported,
  unsupported,
} from "../../../bridges/kit/AdapterRuntime.js";
import type { Capabilities } from "../../../bridges/kit/capabilities.js";
import { startAdapter, type NetworkAdapter, type RunningAdapter } from "../../../bridges/kit/startAdapter.js";
import { isGatewayNotice } from "../../../bridges/kit/isGatewayNotice.js";
import { puppetName } from "../../../bridges/kit/puppetName.js";
import type { LoopbackMessage, LoopbackServer } from "./LoopbackServer.js";

export const LOOPBACK = "loopback";
/** Who the bridge posts as. */
export const LOOPBACK_BOT = "fedgate";

export const loopbackCapabilities: Capabilities = {
  edits: "native",
  deletions: "native",
  reactions: "none",
  membership: "none",
  files: false,
  directChats: false,
  catchUp: true,
};

export class LoopbackBridge implements NetworkAdapter {
  private disconnect: (() => void) | undefined;
  /** The last message bridged per conversation: catch-up starts after it. Memory only, like the server. */
  private readonly last = new Map<string, string>();

  private constructor(
    private readonly server: LoopbackServer,
    private readonly runtime: AdapterRuntime,
    private readonly instance: string,
    private readonly conversations: readonly string[],
  ) {}

  /** The kit runs it (startAdapter): runtime, deliveries, then afterStart, and stop() in reverse. */
  static start(
    bus: Bus,
    server: LoopbackServer,
    options: {
      instance: string;
      conversations: readonly string[];
      log: Logger;
      caughtUpTo?: Map<string, string>;
    },
  ): Promise<RunningAdapter<LoopbackBridge>> {
    return startAdapter(
      bus,
      {
        network: LOOPBACK,
        instance: options.instance,
        capabilities: loopbackCapabilities,
        open: (runtime) => {
          const bridge = new LoopbackBridge(server, runtime, options.instance, options.conversations);
          for (const [conversation, id] of options.caughtUpTo ?? []) bridge.last.set(conversation, id);
          return Promise.resolve(bridge);
        },
      },
      options.log,
    );
  }

  /** Listens to the server, then catches up on what was said while the bridge was away. */
  async afterStart(): Promise<void> {
    this.disconnect = this.server.connect((message) => void this.receive(message));
    for (const conversation of this.conversations)
      for (const message of this.server.history(conversation, this.last.get(conversation)))
        await this.receive(message);
  }

  /** Where each conversation was caught up to: what a restart starts from. */
  get caughtUpTo(): Map<string, string> {
    return new Map(this.last);
  }

  private async receive(message: LoopbackMessage): Promise<void> {
    if (!this.conversations.includes(message.conversation) || message.from === LOOPBACK_BOT) return;
    const source = { network: LOOPBACK, instance: this.instance, conversation: message.conversation };
    // Seen before (live and again in the history): the message map knows it.
    if ((await this.runtime.messages.eventId(source, message.id)) !== undefined) return;
    const replyTo =
      message.replyTo === undefined
        ? undefined
        : await this.runtime.messages.eventId(source, message.replyTo);
    const event: NormalisedEvent = {
      specVersion: "1",
      id: this.runtime.eventIdOf(message.id),
      type: "message.created",
      source: { ...source, messageId: message.id },
      sender: { userId: message.from, displayName: message.from },
      content: { body: message.text },
      ...(replyTo === undefined ? {} : { relations: { replyTo } }),
      timestamp: new Date().toISOString(),
    };
    await this.runtime.publish(event);
    this.last.set(message.conversation, message.id);
  }

  /** Loopback has no puppets: the bridge posts everything, with who wrote it in front. */
  readonly deliver = (
    delivery: Delivery,
    relations: NativeRelations,
  ): Promise<string | Unsupported | undefined> => {
    const { event, target } = delivery;
    const from = LOOPBACK_BOT;
    const who = isGatewayNotice(delivery) ? "fedgate" : puppetName(delivery);
    const text = `${delivery.marking === undefined ? "" : `[${delivery.marking.label}] `}${who}: ${event.content?.body ?? ""}`;
    switch (event.type) {
      case "message.created":
      case "notice":
        return Promise.resolve(
          this.server.post({
            conversation: target.conversation,
            from,
            text,
            ...(relations.replyTo === undefined ? {} : { replyTo: relations.replyTo }),
          }),
        );
      case "message.edited":
        if (relations.replaces !== undefined) this.server.edit(relations.replaces, text);
        return Promise.resolve(undefined);
      case "message.deleted":
        if (relations.redacts !== undefined) this.server.delete(relations.redacts);
        return Promise.resolve(undefined);
      default:
        // The declared capabilities keep the rest from getting here; said again, should they change.
        return Promise.resolve(unsupported(`loopback has no ${event.type}`));
    }
  };

  close(): Promise<void> {
    this.disconnect?.();
    return Promise.resolve();
  }
}
