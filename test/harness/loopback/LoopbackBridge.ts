/**
 * A minimal adapter on the kit, for the in-memory loopback network: what docs/adding-a-network.md shows, and
 * what the conformance scenarios run against first. Native messages become events; deliveries become
 * messages posted as "Name (Agency)"; while it was away, what was said is caught up from the history.
 */
import type { Logger } from "pino";
import type { Delivery, NormalisedEvent } from "../../../schemas/types.js";
import type { Bus } from "../../../gateway/platform/bus/Bus.js";
import {
  AdapterRuntime,
  type NativeRelations,
  type Unsupported,
  unsupported,
} from "../../../bridges/kit/AdapterRuntime.js";
import type { Capabilities } from "../../../bridges/kit/capabilities.js";
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

export class LoopbackBridge {
  private disconnect: (() => void) | undefined;
  /** The last message bridged per conversation: catch-up starts after it. Memory only, like the server. */
  private readonly last = new Map<string, string>();

  private constructor(
    private readonly server: LoopbackServer,
    private readonly runtime: AdapterRuntime,
    private readonly instance: string,
    private readonly conversations: readonly string[],
  ) {}

  static async start(
    bus: Bus,
    server: LoopbackServer,
    options: {
      instance: string;
      conversations: readonly string[];
      log: Logger;
      caughtUpTo?: Map<string, string>;
    },
  ): Promise<LoopbackBridge> {
    const runtime = await AdapterRuntime.open(bus, {
      network: LOOPBACK,
      instance: options.instance,
      log: options.log,
      capabilities: loopbackCapabilities,
    });
    const bridge = new LoopbackBridge(server, runtime, options.instance, options.conversations);
    for (const [conversation, id] of options.caughtUpTo ?? []) bridge.last.set(conversation, id);
    await runtime.consumeDeliveries((delivery, relations) => bridge.deliver(delivery, relations));
    bridge.disconnect = server.connect((message) => void bridge.receive(message));
    for (const conversation of options.conversations)
      for (const message of server.history(conversation, bridge.last.get(conversation)))
        await bridge.receive(message);
    return bridge;
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
  private deliver(delivery: Delivery, relations: NativeRelations): Promise<string | Unsupported | undefined> {
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
  }

  async stop(): Promise<void> {
    this.disconnect?.();
    await this.runtime.close();
  }
}
