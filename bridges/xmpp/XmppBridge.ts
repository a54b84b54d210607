/**
 * The XMPP bridge: an external component (XEP-0114) on its own domain. Its bot listens in every linked group
 * chat (XEP-0045) and publishes what native occupants write; each remote person speaks through a puppet JID
 * on the bridge domain, with the nickname "Name (Agency)". The stanzas a delivery posts have ids derived from
 * it, and a delivery handled again looks in the room's archive for what it posted before (postedBefore).
 */
import type { Logger } from "pino";
import type { Delivery } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import {
  type AdapterRuntime,
  type DeliverySettings,
  type NativeMessage,
  type NativeRelations,
  type Unsupported,
} from "../kit/AdapterRuntime.js";
import { ConnectionWatch } from "../kit/ConnectionWatch.js";
import { InputQueue } from "../kit/InputQueue.js";
import { startAdapter, type NetworkAdapter, type RunningAdapter } from "../kit/startAdapter.js";
import { xmppCapabilities } from "./capabilities.js";
import type { XmppBridgeConfig } from "./config.types.js";
import { Deliveries } from "./Deliveries.js";
import { DirectInbound } from "./DirectInbound.js";
import { FileUploads } from "./FileUploads.js";
import { isPuppetJid } from "./jids.js";
import { MucRooms } from "./MucRooms.js";
import { NativePublisher } from "./NativePublisher.js";
import { NS } from "./namespaces.js";
import { nickCandidates } from "./nicks.js";
import { Reactions } from "./Reactions.js";
import { RecentMessages } from "./RecentMessages.js";
import { Refusals } from "./refusals.js";
import { RoomArchive } from "./RoomArchive.js";
import { RoomCatchUp } from "./RoomCatchUp.js";
import { RoomEchoes } from "./RoomEchoes.js";
import { RoomInbound } from "./RoomInbound.js";
import { storedWith } from "./stored.js";
import { vcardOf } from "./vcard.js";
import { XmppComponent, type XmlElement } from "./XmppComponent.js";

/** The bridge's own state: per room, the last stanza-id bridged. */
const STATE_BUCKET = "fedgate_xmpp_state";

export class XmppBridge implements NetworkAdapter {
  private readonly rooms: MucRooms;
  /**
   * A conversation's messages, live or from a room's archive, are handled one at a time and in order; at
   * most storeRetry.maxWaiting of them wait while the bus cannot store them.
   */
  private readonly perRoom: InputQueue;
  /**
   * The same for direct chats, by "<native user> <puppet>". Anyone may open one, so the bound holds for all
   * of them together too.
   */
  private readonly perDirect: InputQueue;
  /** Ends the retries of what waits for the bus (see untilStored) when the bridge stops. */
  private readonly stopping = new AbortController();
  private readonly catchUp: RoomCatchUp;
  private readonly roomInbound: RoomInbound;
  private readonly directInbound: DirectInbound;
  private readonly deliveries: Deliveries;
  /** Pings the server (XEP-0199) on a schedule: a stream that stays open while nothing answers is dropped. */
  readonly connection: ConnectionWatch;
  private checkingRooms = false;

  private constructor(
    private readonly config: XmppBridgeConfig,
    private readonly component: XmppComponent,
    private readonly runtime: AdapterRuntime,
    private readonly links: LinkStore,
    state: KeyValueStore,
    private readonly log: Logger,
  ) {
    const { botJid } = this;
    const { maxWaiting } = config.storeRetry;
    // A host of the component's server: the first domain its users are on.
    const serverHost = config.userDomains[0];
    this.connection = new ConnectionWatch(
      {
        ping: async (timeoutMs) => {
          await component.ping(serverHost, timeoutMs);
          // The stream answers; whether each room still has the bot is a question of its own.
          void this.checkRooms(timeoutMs);
        },
        reconnect: () => component.reconnect(),
      },
      { network: "xmpp", instance: config.instance, log, check: config.connectionCheck },
    );
    this.perRoom = new InputQueue(maxWaiting);
    this.perDirect = new InputQueue(maxWaiting, maxWaiting);
    const stored = storedWith(config.storeRetry, this.stopping.signal, log);
    const archive = new RoomArchive(component, botJid);
    const echoes = new RoomEchoes();
    const recent = new RecentMessages();
    const refusals = new Refusals(component, log);
    const reactions = new Reactions({ state, runtime, instance: config.instance, component, log });
    this.rooms = new MucRooms(component, botJid, log, (type, room, nick, occupant) =>
      this.roomInbound.publishMembership(type, room, nick, occupant),
    );
    this.catchUp = new RoomCatchUp({
      archive,
      state,
      perRoom: this.perRoom,
      stored,
      stopping: this.stopping.signal,
      log,
      bridgeArchived: (room, { message, nick, archiveId, archivedJid }) =>
        this.roomInbound.bridge(message, room, nick, archiveId, archivedJid),
    });
    const publisher = new NativePublisher({ runtime, config, reactions, recent, log });
    this.roomInbound = new RoomInbound({
      config,
      maxWaiting,
      botJid,
      rooms: this.rooms,
      archive,
      echoes,
      catchUp: this.catchUp,
      perRoom: this.perRoom,
      stored,
      publisher,
      refusals,
      recent,
      runtime,
      log,
    });
    this.directInbound = new DirectInbound({
      config,
      maxWaiting,
      perDirect: this.perDirect,
      stored,
      links,
      runtime,
      publisher,
      refusals,
      recent,
      log,
    });
    this.deliveries = new Deliveries({
      config,
      botJid,
      component,
      runtime,
      rooms: this.rooms,
      echoes,
      postedBefore: { state, archive, rooms: this.rooms, log },
      reactions,
      uploads: new FileUploads(component, botJid, config, log),
      recent,
      refusals,
      log,
    });
  }

  /** Starts the bridge on the kit (see startAdapter): the component connects before deliveries flow. */
  static start(
    bus: Bus,
    config: XmppBridgeConfig,
    secret: string,
    log: Logger,
    deliveries: DeliverySettings = {},
  ): Promise<RunningAdapter<XmppBridge>> {
    return startAdapter(
      bus,
      {
        network: "xmpp",
        instance: config.instance,
        capabilities: xmppCapabilities,
        open: async (runtime) => {
          const component = new XmppComponent({
            service: config.service,
            domain: config.domain,
            secret,
            log,
          });
          const state = await bus.keyValue(STATE_BUCKET);
          const bridge = new XmppBridge(config, component, runtime, runtime.links, state, log);
          component.onStanza((stanza) => bridge.receive(stanza));
          component.onGet(NS.vcard, "vCard", (iq) => bridge.vcardOf(iq));
          component.onOnline(() => {
            bridge.connection.connectedNow();
            // A reconnection loses every room membership; rejoining catches up from each room's archive.
            void bridge.rooms.forgetAfterReconnection().then(() => bridge.joinLinkedRooms());
          });
          component.onDisconnect(() => bridge.connection.disconnectedNow());
          try {
            await component.start();
          } catch (error) {
            await component.stop();
            throw error;
          }
          return bridge;
        },
      },
      log,
      deliveries,
    );
  }

  private get botJid(): string {
    return `fedgate@${this.config.domain}/bridge`;
  }

  /** The linked group chats of this instance. */
  private linkedRooms(): string[] {
    return this.runtime.linked
      .list()
      .filter(({ endpoint }) => (endpoint.kind ?? "room") === "room")
      .map(({ endpoint }) => endpoint.conversation)
      .filter((room) => this.config.mucDomains.includes(room.split("@")[1] ?? ""));
  }

  private joinLinkedRooms(): void {
    for (const room of this.linkedRooms()) {
      if (this.rooms.isIn(room, this.botJid)) continue;
      // First in the room's queue: live messages that arrive meanwhile wait until the archive is bridged,
      // so the room's order holds across a reconnection.
      this.perRoom.run(room, async () => {
        try {
          await this.rooms.join(room, this.botJid, nickCandidates(this.config.botNick));
        } catch (error) {
          this.log.error({ room, err: error }, "cannot join linked room");
          return;
        }
        await this.catchUp.catchUpOrFallBehind(room);
      });
    }
  }

  /**
   * Asks each room the bot is in whether it still is (XEP-0410 self-ping): a room that lost it without a word
   * (a MUC service restarted, a kick) is joined again and caught up from its archive. One round at a time.
   */
  private async checkRooms(timeoutMs: number): Promise<void> {
    if (this.checkingRooms) return;
    this.checkingRooms = true;
    try {
      const linked = new Set(this.linkedRooms());
      const rooms = this.rooms.botRooms().filter(({ roomJid }) => linked.has(roomJid));
      const answers = await Promise.all(
        rooms.map(async ({ roomJid, nick }) => ({
          roomJid,
          answer: await this.component.selfPing(this.botJid, `${roomJid}/${nick}`, timeoutMs),
        })),
      );
      const gone = answers.filter(({ answer }) => answer === "gone").map(({ roomJid }) => roomJid);
      for (const room of gone) {
        this.log.warn({ room }, "the room no longer has the bridge (XEP-0410 self-ping); joining it again");
        await this.rooms.forgetRoom(room);
      }
      if (gone.length > 0) this.joinLinkedRooms();
    } catch (error) {
      this.log.warn({ err: error }, "cannot check the rooms");
    } finally {
      this.checkingRooms = false;
    }
  }

  private receive(stanza: XmlElement): void {
    try {
      if (stanza.name === "presence") this.rooms.onPresence(stanza);
      else if (stanza.name === "message") this.onMessage(stanza);
    } catch (error) {
      this.log.warn({ err: error, from: stanza.attrs["from"] }, "stanza refused");
    }
  }

  private onMessage(stanza: XmlElement): void {
    const type = stanza.attrs["type"] ?? "normal";
    if (type === "error") {
      this.log.info(
        { from: stanza.attrs["from"], to: stanza.attrs["to"], error: stanza.getChild("error")?.toString() },
        "the XMPP server returned a stanza as undeliverable",
      );
      return;
    }
    const to = stanza.attrs["to"];
    if (
      (type === "chat" || type === "normal") &&
      stanza.getChild("result", NS.mam) === undefined &&
      to !== undefined &&
      isPuppetJid(to, this.config.domain)
    ) {
      this.directInbound.receive(stanza, to);
      return;
    }
    this.roomInbound.receive(stanza);
  }

  /** Posts a delivery as the sender's puppet (see Deliveries). */
  readonly deliver = (
    delivery: Delivery,
    relations: NativeRelations,
  ): Promise<NativeMessage | Unsupported | undefined> => this.deliveries.deliver(delivery, relations);

  reconcileLinks(): Promise<void> {
    this.joinLinkedRooms();
    return Promise.resolve();
  }

  private vcardOf(iq: XmlElement): Promise<XmlElement> {
    return vcardOf(this.runtime.identities, this.config.instance, iq);
  }

  async close(): Promise<void> {
    // What waits for the bus stops waiting: a room's message is read from its archive by the next start, a
    // direct message's sender is told (while the component is still connected).
    this.stopping.abort();
    await Promise.all([this.perRoom.idle(), this.perDirect.idle()]);
    // A component's occupants are not removed when it disconnects: leave every room, as bot and as puppets.
    await this.rooms.leaveAll();
    await this.component.stop();
  }
}

/** The XMPP bridge as XmppBridge.start gives it: running, with stop(). */
export type RunningXmppBridge = RunningAdapter<XmppBridge>;
