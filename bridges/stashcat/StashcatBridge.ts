/**
 * The Stashcat bridge: reads and writes as one service account, since Stashcat has no puppets. What
 * officers write in linked channels and conversations reaches the bus decrypted; what the core delivers is
 * encrypted for the chat and posted with the sender's name and agency leading the text.
 *
 * New messages arrive through the push channel. After every (re)connection and at start, each linked chat
 * is read from the last message bridged (`message/content`), so nothing is lost while the push channel or
 * the bridge was down; message ids already in the message map are skipped, so nothing is doubled. The
 * catch-ups of a connection are queued before any of its pushes is handled, so a pushed message never moves
 * a chat's catch-up point past messages written while the channel was down.
 */
import type { KeyObject } from "node:crypto";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import type { KeyValueStore } from "../../gateway/platform/bus/KeyValueStore.js";
import type { Logger } from "../../gateway/platform/log.js";
import type { AdapterRuntime, DeliveryHandler, DeliverySettings } from "../kit/AdapterRuntime.js";
import { ConnectionWatch } from "../kit/ConnectionWatch.js";
import { startAdapter, type NetworkAdapter, type RunningAdapter } from "../kit/startAdapter.js";
import { stashcatCapabilities } from "./capabilities.js";
import { CatchUps } from "./CatchUps.js";
import { ChatCursors } from "./ChatCursors.js";
import { ChatKeys } from "./ChatKeys.js";
import { NETWORK } from "./chatConversations.js";
import type { LoadedStashcatConfig } from "./config.js";
import type { StashcatBridgeConfig } from "./config.types.js";
import { unlockPrivateKey } from "./crypto.js";
import { Deliveries } from "./Deliveries.js";
import { DirectChats } from "./DirectChats.js";
import { DirectChatStore } from "./DirectChatStore.js";
import { InboundLikes } from "./InboundLikes.js";
import { InboundMessages } from "./InboundMessages.js";
import { LikesSeenStore } from "./LikesSeenStore.js";
import { MessageFiles } from "./MessageFiles.js";
import { Outbox } from "./Outbox.js";
import { OwnActionStore } from "./OwnActionStore.js";
import { Retries } from "./Retries.js";
import { sessionStore } from "./SessionStore.js";
import { StashcatClient } from "./StashcatClient.js";
import { StashcatPush } from "./StashcatPush.js";

/** The session, the last message bridged per chat, direct chats and likes: what a restart must not forget. */
const STATE_BUCKET = "fedgate_stashcat_state";

export class StashcatBridge implements NetworkAdapter {
  private push: StashcatPush | undefined;
  private readonly retries = new Retries();
  private readonly files: MessageFiles;
  private readonly catchUps: CatchUps;
  private readonly deliveries: Deliveries;
  /**
   * Asks the push channel's heartbeat on a schedule: a socket that stays open while the server answers
   * nothing is dropped, and the catch-up after the new authentication reads what the push missed.
   */
  readonly connection: ConnectionWatch;

  private constructor(
    private readonly config: StashcatBridgeConfig,
    private readonly client: StashcatClient,
    privateKey: KeyObject,
    runtime: AdapterRuntime,
    state: KeyValueStore,
    outbox: Outbox,
    fileLinkKey: Buffer,
    private readonly log: Logger,
  ) {
    const { links } = runtime;
    const { retries } = this;
    this.connection = new ConnectionWatch(
      {
        ping: (timeoutMs) =>
          this.push?.heartbeat(timeoutMs) ??
          Promise.reject(new Error("the push channel is not connected yet")),
        reconnect: () => this.push?.reconnect() ?? Promise.resolve(),
      },
      { network: NETWORK, instance: config.instance, log, check: config.connectionCheck },
    );
    const cursors = new ChatCursors(state);
    const directChats = new DirectChatStore(state);
    const ownActions = new OwnActionStore(state);
    const chatKeys = new ChatKeys(client, privateKey);
    this.files = new MessageFiles(config, fileLinkKey, { client, chatKeys, log });
    const inbound = new InboundMessages(config, {
      client,
      runtime,
      links,
      cursors,
      chatKeys,
      files: this.files,
      directChats,
      ownActions,
      likes: new InboundLikes({ runtime, ownActions, likesSeen: new LikesSeenStore(state) }),
      retries,
      log,
    });
    this.catchUps = new CatchUps(config, {
      client,
      linked: runtime.linked,
      directChats,
      cursors,
      inbound,
      retries,
      log,
    });
    this.deliveries = new Deliveries(config, {
      client,
      chatKeys,
      directChats: new DirectChats({ client, store: directChats, cursors, log }),
      ownActions,
      outbox,
      log,
    });
  }

  /**
   * Starts the bridge on the kit (see startAdapter): logged in and serving file links before deliveries
   * flow; the push channel last, since its first "ready" queues the catch-ups.
   */
  static start(
    bus: Bus,
    loaded: LoadedStashcatConfig,
    log: Logger,
    deliveries: DeliverySettings = {},
  ): Promise<RunningStashcatBridge> {
    const { config } = loaded;
    return startAdapter(
      bus,
      {
        network: NETWORK,
        instance: config.instance,
        capabilities: stashcatCapabilities,
        open: async (runtime) => {
          const state = await bus.keyValue(STATE_BUCKET);
          const outbox = await Outbox.open(bus);
          const client = await StashcatClient.connect({
            apiUrl: config.apiUrl,
            email: config.email,
            password: loaded.password,
            deviceId: config.deviceId,
            appName: config.appName,
            log,
            sessionStore: sessionStore(state),
          });
          const privateKey = unlockPrivateKey(await client.lockedPrivateKey(), loaded.encryptionPassword);
          const bridge = new StashcatBridge(
            config,
            client,
            privateKey,
            runtime,
            state,
            outbox,
            MessageFiles.linkKeyOf(loaded.password),
            log,
          );
          await bridge.files.listen();
          return bridge;
        },
      },
      log,
      deliveries,
    );
  }

  readonly deliver: DeliveryHandler = (delivery, relations) => this.deliveries.deliver(delivery, relations);

  async afterStart(): Promise<void> {
    this.push = await StashcatPush.connect({
      pushUrl: this.config.pushUrl,
      deviceId: this.config.deviceId,
      client: this.client,
      log: this.log,
      onMessage: (raw) => {
        this.catchUps.onPush(raw);
      },
      onReady: () => {
        this.connection.connectedNow();
        this.catchUps.onPushReady();
      },
      onDisconnect: () => this.connection.disconnectedNow(),
    });
  }

  async close(): Promise<void> {
    this.retries.stop();
    await this.push?.stop();
    // Pushes held for a catch-up listing join their queues once it ends; then every queue runs out.
    await this.catchUps.idle();
    await this.files.close();
  }
}

/** The Stashcat bridge as StashcatBridge.start gives it: running, with stop(). */
export type RunningStashcatBridge = RunningAdapter<StashcatBridge>;
