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
import { createHash } from "node:crypto";
import type { Delivery } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import { JoinCodeStore } from "../../gateway/platform/stores/JoinCodeStore.js";
import type { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import {
  type AdapterRuntime,
  type DeliverySettings,
  type NativeMessage,
  type NativeRelations,
} from "../kit/AdapterRuntime.js";
import { ConnectionWatch } from "../kit/ConnectionWatch.js";
import { startAdapter, type NetworkAdapter, type RunningAdapter } from "../kit/startAdapter.js";
import { matrixCapabilities } from "./capabilities.js";
import { listenAppService, openTxnStore } from "./AppServiceEndpoint.js";
import type { HttpListener } from "../../gateway/platform/http/HttpListener.js";
import { BotNotices } from "./BotNotices.js";
import { BridgeDevices } from "./crypto/BridgeDevices.js";
import { EncryptedSender } from "./EncryptedSender.js";
import { ParkedEvents, type RoomKey } from "./crypto/ParkedEvents.js";
import { Commands } from "./Commands.js";
import { readStoreKey, type LoadedMatrixConfig } from "./config.js";
import type { MatrixBridgeConfig } from "./config.types.js";
import { Deliveries } from "./Deliveries.js";
import { DirectChats } from "./DirectChats.js";
import { DirectChatStore } from "./DirectChatStore.js";
import { GhostUsers } from "./GhostUsers.js";
import { InboundEvents } from "./InboundEvents.js";
import { Invitations } from "./Invitations.js";
import { pingUntilAnswered } from "./pingUntilAnswered.js";
import { MatrixClient } from "./MatrixClient.js";
import { MatrixInstance, NETWORK } from "./matrixInstance.js";
import { MediaLinks } from "./MediaLinks.js";
import { createMediaRouter } from "./MediaProxy.js";
import { NativeUsers } from "./NativeUsers.js";
import { ReactionStore } from "./ReactionStore.js";
import { RoomGuard } from "./RoomGuard.js";
import { RoomMarkings } from "./RoomMarkings.js";
import { SaidOnceStore } from "./SaidOnceStore.js";
import { SkippedEvents } from "./SkippedEvents.js";

/**
 * Encrypted events that wait for their keys: how many, and how long. A key follows its message within
 * seconds (the homeserver's next transaction) unless its sender's client withholds it or is gone.
 */
const PARKED_EVENTS = 1000;
/** Of them, at most these of one sender: one member cannot push out everyone else's. */
const PARKED_EVENTS_PER_SENDER = 100;
const PARKED_AGE_MS = 10 * 60 * 1000;

/** Direct chat rooms, reactions sent and received, notices said once: what a restart must not forget. */
const STATE_BUCKET = "fedgate_matrix_state";

interface ResolvedConfig extends MatrixBridgeConfig {
  userServers: [string, ...string[]];
  roomServers: [string, ...string[]];
  publicUrl: string;
}

export class MatrixBridge implements NetworkAdapter {
  private server: HttpListener | undefined;
  private readonly guard: RoomGuard;
  private readonly ghosts: GhostUsers;
  private readonly inbound: InboundEvents;
  private readonly deliveries: Deliveries;
  /** Encrypted events waiting for their room keys; undefined without encryption. */
  private readonly parked: ParkedEvents | undefined;
  /** The appservice ping on a schedule: the homeserver answers, and reaches the bridge back. */
  readonly connection: ConnectionWatch;

  private constructor(
    config: ResolvedConfig,
    appserviceId: string,
    bot: string,
    client: MatrixClient,
    private readonly runtime: AdapterRuntime,
    links: LinkStore,
    joinCodes: JoinCodeStore,
    state: KeyValueStore,
    /** Signs the file links the bridge serves. */
    private readonly mediaKey: Buffer,
    /** The bot's and ghosts' devices for encrypted rooms; undefined without encryption. */
    private readonly devices: BridgeDevices | undefined,
    log: Logger,
  ) {
    /** An encrypted event the bridge cannot read is dead-lettered for operators, once, as it came. */
    const undecryptable = async (raw: unknown, error: Error): Promise<void> => {
      const { room_id: room, event_id: eventId } = (raw ?? {}) as { room_id?: unknown; event_id?: unknown };
      const where = typeof room === "string" ? room.slice(0, 255) : "unknown-room";
      const dedupe = typeof eventId === "string" ? `undecryptable.${eventId.slice(0, 255)}` : undefined;
      await runtime.deadLetter(where, raw, error, dedupe).catch((cause: unknown) => {
        log.warn({ err: cause, room: where }, "undecryptable Matrix event not dead-lettered");
      });
    };
    this.parked =
      devices &&
      new ParkedEvents({
        maxEvents: PARKED_EVENTS,
        maxPerSender: PARKED_EVENTS_PER_SENDER,
        maxAgeMs: PARKED_AGE_MS,
        store: state,
        log,
        onDropped: (raw, error) => this.inbound.notDecrypted(raw, error),
      });
    const self = new MatrixInstance(config.instance, bot, {
      prefix: config.ghostPrefix,
      serverName: config.serverName,
    });
    this.connection = new ConnectionWatch(
      {
        ping: (timeoutMs) => client.ping(appserviceId, timeoutMs),
        // Nothing to drop: every call has a timeout of its own, and the homeserver sends again the
        // transactions the bridge did not answer.
        reconnect: () => Promise.resolve(),
      },
      { network: NETWORK, instance: config.instance, log, check: config.connectionCheck },
    );
    const { identities } = runtime;
    // The guard knows which rooms are encrypted; it needs the notices, made first.
    const encrypted: EncryptedSender | undefined =
      devices === undefined
        ? undefined
        : new EncryptedSender({
            client,
            devices,
            encryptionOf: (room, asUser) => guard.encryptionOf(room, asUser),
          });
    const notices: BotNotices = new BotNotices(
      client,
      new SaidOnceStore(state),
      log,
      encrypted && { bot, sender: encrypted },
    );
    const guard: RoomGuard = new RoomGuard(config, { client, linked: runtime.linked, notices, log });
    const ghosts = new GhostUsers(config, { self, client, identities, state, log });
    const directChats = new DirectChats({
      self,
      client,
      links,
      guard,
      ghosts,
      store: new DirectChatStore(state),
      log,
    });
    const reactions = new ReactionStore(state);
    const media = new MediaLinks(config, mediaKey, client);
    this.inbound = new InboundEvents(config, {
      self,
      runtime,
      links,
      skipped: new SkippedEvents(state, client, (user) => self.isBridgeUser(user), log),
      guard,
      directChats,
      invitations: new Invitations(config, {
        self,
        client,
        links,
        identities,
        guard,
        directChats,
        ghosts,
        notices,
        ...(devices && { devices }),
        log,
      }),
      commands: new Commands({ self, client, links, joinCodes, guard, notices, log }),
      markings: new RoomMarkings({ client, notices }),
      ghosts,
      natives: new NativeUsers(client, media),
      undecryptable,
      media,
      reactions,
      notices,
      ...(devices === undefined
        ? {}
        : {
            decrypt: (roomId, event) => devices.decrypt(bot, roomId, event),
            parked: this.parked,
          }),
      log,
    });
    this.deliveries = new Deliveries(config, {
      self,
      client,
      ghosts,
      directChats,
      guard,
      reactions,
      notices,
      state,
      ...(encrypted && { encrypted }),
      log,
    });
    this.guard = guard;
    this.ghosts = ghosts;
  }

  /** Starts the bridge on the kit (see startAdapter): the homeserver can reach it before deliveries flow. */
  static start(
    bus: Bus,
    loaded: LoadedMatrixConfig,
    log: Logger,
    deliveries: DeliverySettings = {},
  ): Promise<RunningMatrixBridge> {
    const { config: section, registration } = loaded;
    const userServers: [string, ...string[]] = section.userServers ?? [section.serverName];
    const config: ResolvedConfig = {
      ...section,
      userServers,
      roomServers: section.roomServers ?? userServers,
      publicUrl: (section.publicUrl ?? registration.url).replace(/\/+$/, ""),
    };
    return startAdapter(
      bus,
      {
        network: NETWORK,
        instance: config.instance,
        capabilities: matrixCapabilities,
        open: async (runtime) => {
          const client = new MatrixClient({
            homeserverUrl: config.homeserverUrl,
            asToken: registration.as_token,
            log,
          });
          const bot = `@${registration.sender_localpart}:${config.serverName}`;
          const { enabled, deviceName, maxDevices, onlyCrossSignedDevices, storeFile, storeKeyFile } =
            config.encryption;
          const store =
            storeFile === undefined || storeKeyFile === undefined
              ? undefined
              : { file: storeFile, key: await readStoreKey(storeKeyFile) };
          const devices = enabled
            ? await BridgeDevices.open({
                client,
                deviceName,
                maxDevices,
                onlyCrossSignedDevices,
                ...(store && { store }),
                log,
              })
            : undefined;
          const bridge = new MatrixBridge(
            config,
            registration.id,
            bot,
            client,
            runtime,
            runtime.links,
            await JoinCodeStore.open(bus, log),
            await bus.keyValue(STATE_BUCKET),
            // A key of its own for file links, so that a leaked link reveals nothing of the AS tokens.
            createHash("sha256").update(`fedgate media links\0${registration.as_token}`).digest(),
            devices,
            log,
          );
          // Before the homeserver can push a key: the events that waited for it when the bridge stopped.
          await bridge.parked?.load();
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
              ...(devices === undefined
                ? {}
                : {
                    onCrypto: async (transaction) => {
                      await devices.receive(transaction);
                      await bridge.onRoomKeys(devices.takeRoomKeys());
                    },
                  }),
              userExists: (userId) => bridge.ghostExists(userId),
              log,
            },
            config.listen.host,
            config.listen.port,
            [media],
          );
          log.info({ url: bridge.server.url, bot }, "Matrix bridge listening for the homeserver");
          // A homeserver that failed to reach the bridge while it was down holds it for down until a retry
          // after a back-off (Synapse: up to minutes); until then it drops the to-device messages it has for
          // the bridge that come without room events, room keys among them, for good. An answered ping makes
          // it retry at once.
          await pingUntilAnswered(client, registration.id, config.connectionCheck.timeoutMs, log);
          // Only once the endpoint listens: making the device is news the homeserver pushes at once, and
          // what it queues while it takes the bridge for down waits for its next transaction.
          await devices?.deviceFor(bot);
          // Events kept waiting whose keys came before the bridge stopped. A passing failure does not stop
          // the start: they are tried again with the next keys the homeserver pushes.
          await bridge.onKeysAtHand().catch((error: unknown) => {
            log.warn({ err: error }, "encrypted Matrix events whose keys came are not bridged yet");
          });
          bridge.parked?.sweepEvery(PARKED_AGE_MS / 10);
          return bridge;
        },
      },
      log,
      deliveries,
    );
  }

  /** Where the homeserver reaches this bridge. */
  get url(): string {
    return this.server?.url ?? "";
  }

  private onTransaction(events: readonly unknown[]): Promise<void> {
    return this.inbound.onTransaction(events);
  }

  private onRoomKeys(keys: RoomKey[]): Promise<void> {
    return this.inbound.onRoomKeys(keys);
  }

  private onKeysAtHand(): Promise<void> {
    return this.inbound.onKeysAtHand();
  }

  private ghostExists(userId: string): Promise<boolean> {
    return this.ghosts.exists(userId);
  }

  readonly deliver = (delivery: Delivery, relations: NativeRelations): Promise<NativeMessage | undefined> =>
    this.deliveries.deliver(delivery, relations);

  reconcileLinks(): Promise<void> {
    return this.guard.joinLinkedRooms();
  }

  async close(): Promise<void> {
    this.parked?.stop();
    await this.server?.close();
    await this.devices?.close();
  }
}

/** The Matrix bridge as MatrixBridge.start gives it: running, with stop(). */
export type RunningMatrixBridge = RunningAdapter<MatrixBridge>;
