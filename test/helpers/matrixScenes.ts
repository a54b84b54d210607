/**
 * Scenes for the Matrix bridge's tests: a real Synapse that knows the bridge as an Application Service, a
 * nats-server, French officials as plain client-server API users, and German officers as deliveries the
 * core would publish.
 */
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Agent, request } from "undici";
import type { AgencyRef, Delivery, Endpoint, EventSender, NormalisedEvent } from "../../schemas/types.js";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../schemas/contract/topology.js";
import { subjects } from "../../schemas/contract/subjects.js";
import type { LocalNatsServer } from "../harness/servers/LocalNatsServer.js";
import { freePort } from "../harness/servers/serverProcess.js";
import type { Logger } from "../../gateway/platform/log.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import type { MatrixBridgeConfig } from "../../bridges/matrix/config.types.js";
import { validateMatrixConfig } from "../../bridges/matrix/config.js";
import type { ConfigInput } from "../harness/configInput.js";
import { MatrixBridge, type RunningMatrixBridge } from "../../bridges/matrix/MatrixBridge.js";
import { generateRegistration, type AppServiceRegistration } from "../../bridges/matrix/registration.js";
import type { LocalSynapse } from "../harness/servers/matrix/LocalSynapse.js";
import { eventually } from "./fixtures.js";
import { startNatsOrSkip } from "./nats.js";
import { scratchDir } from "./scratchDir.js";
import { startSynapseOrSkip } from "./synapse.js";

export type Json = Record<string, unknown>;

export const serverName = "tchap.localhost";

/** Kommissarin Weber of the Bundespolizei, on XMPP: the remote person of every scene. */
export const weber: EventSender = { userId: "weber@bpol.localhost", displayName: "Kommissarin Weber" };
export const bpol: AgencyRef = { id: "bpol", name: "Bundespolizei", country: "DE" };
export const weberXmppRoom: Endpoint = {
  network: "xmpp",
  instance: "bpol",
  conversation: "einsatz@conference.bpol.localhost",
  agency: "bpol",
};
/** Weber's ghost on Tchap. */
export const weberGhost = `@fedgate_xmpp_bpol_weber=40bpol.localhost:${serverName}`;

export interface MatrixScene {
  nats: LocalNatsServer;
  synapse: LocalSynapse;
  registration: AppServiceRegistration;
  /** The bridge's part of the config. */
  config: MatrixBridgeConfig;
  bot: string;
  stop(): Promise<void>;
}

/** nats-server and a Synapse with the bridge registered on a free port; undefined when either is missing. */
export async function startMatrixScene(): Promise<MatrixScene | undefined> {
  const nats = await startNatsOrSkip();
  if (nats === undefined) return undefined;
  const port = await freePort();
  const { registration, yaml } = generateRegistration({
    id: "fedgate-tchap",
    url: `http://127.0.0.1:${String(port)}`,
    serverName,
  });
  const synapse = await startSynapseOrSkip({ serverName, appServiceRegistrations: [yaml] });
  if (synapse === undefined) {
    await nats.stop();
    return undefined;
  }
  const dir = await scratchDir("matrix");
  await writeFile(join(dir, "registration.yaml"), yaml);
  const config = validateMatrixConfig({
    instance: "tchap",
    homeserverUrl: synapse.baseUrl,
    serverName,
    registrationFile: join(dir, "registration.yaml"),
    listen: { host: "127.0.0.1", port },
    agency: "dinum-mi",
    // The tests' file servers (the other networks' files) listen on loopback, on ports chosen at random.
    attachments: { hosts: ["127.0.0.1"] },
  });
  return {
    nats,
    synapse,
    registration,
    config,
    bot: `@${registration.sender_localpart}:${serverName}`,
    stop: async () => {
      await synapse.stop();
      await nats.stop();
    },
  };
}

export async function connectBus(scene: MatrixScene, log: Logger): Promise<JetStreamBus> {
  const bus = await JetStreamBus.connect({ servers: scene.nats.url, log });
  await bus.ensureTopology();
  return bus;
}

export function startMatrixBridge(
  bus: Bus,
  scene: MatrixScene,
  log: Logger,
  config: ConfigInput<MatrixBridgeConfig> = {},
): Promise<RunningMatrixBridge> {
  const attachments = { ...scene.config.attachments, ...config.attachments };
  return MatrixBridge.start(
    bus,
    {
      config: validateMatrixConfig({ ...scene.config, ...config, attachments }),
      registration: scene.registration,
    },
    log,
  );
}

/** Links a Tchap room with an XMPP room of Weber's, named after the link. */
export async function linkTchapRoom(bus: Bus, linkId: string, room: string): Promise<void> {
  const links = new LinkStore(await bus.keyValue(buckets.links));
  await links.create({
    id: linkId,
    endpoints: [
      { ...weberXmppRoom, conversation: `${linkId}@conference.bpol.localhost` },
      { network: "matrix", instance: "tchap", conversation: room, agency: "dinum-mi" },
    ],
  });
}

/**
 * A room the official creates, linked (as `linkId`) with an XMPP room of Weber's, with the bridge's bot
 * invited and in it: what every scene starts from.
 */
export async function linkedRoom(
  scene: MatrixScene,
  bus: Bus,
  official: Official,
  linkId: string,
): Promise<string> {
  const room = await official.createRoom();
  await linkTchapRoom(bus, linkId, room);
  await official.invite(room, scene.bot);
  await eventually(
    async () => ((await official.joinedMembers(room)).includes(scene.bot) ? true : undefined),
    20_000,
    "the bot in the room",
  );
  return room;
}

/** Publishes what the core delivers to `target` (its bridge) of an event Weber sent in the XMPP room. */
export async function deliverFromWeber(
  bus: Bus,
  target: Endpoint,
  event: Partial<NormalisedEvent> & Pick<NormalisedEvent, "type">,
  extra: Partial<Delivery> = {},
): Promise<NormalisedEvent> {
  const full: NormalisedEvent = {
    specVersion: "1",
    id: randomUUID(),
    source: { network: "xmpp", instance: "bpol", conversation: weberXmppRoom.conversation },
    sender: weber,
    timestamp: new Date().toISOString(),
    ...event,
  };
  const delivery: Delivery = {
    specVersion: "1",
    id: `${full.id}.m`,
    event: full,
    target,
    senderAgency: bpol,
    ...extra,
  };
  await bus.publish(subjects.outbound(target.network, target.instance), encodeJson(delivery), {
    msgId: delivery.id,
  });
  return full;
}

export function tchapRoom(room: string): Endpoint {
  return { network: "matrix", instance: "tchap", conversation: room, agency: "dinum-mi" };
}

/**
 * A French official: a Synapse account driven through the plain client-server API. With `keepAlive`, over
 * kept-alive connections of its own (as the benchmark's clients), which close() closes.
 */
export class Official {
  private syncs = 0;

  private constructor(
    private readonly synapse: LocalSynapse,
    readonly userId: string,
    private readonly token: string,
    private readonly agent: Agent | undefined,
  ) {}

  static async register(
    synapse: LocalSynapse,
    localpart: string,
    displayName?: string,
    options: { keepAlive?: boolean } = {},
  ): Promise<Official> {
    const user = await synapse.registerUser(localpart, `pw-${localpart}-${randomUUID()}`);
    const agent =
      options.keepAlive === true
        ? new Agent({ keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 })
        : undefined;
    const official = new Official(synapse, user.userId, user.accessToken, agent);
    if (displayName !== undefined)
      await official.call(
        "PUT",
        `/_matrix/client/v3/profile/${encodeURIComponent(user.userId)}/displayname`,
        {
          displayname: displayName,
        },
      );
    return official;
  }

  /** One client-server API call; fails with Synapse's answer unless it is 200. */
  async call(
    method: "GET" | "POST" | "PUT",
    path: string,
    body: Json = {},
    signal?: AbortSignal,
  ): Promise<Json> {
    const response = await request(`${this.synapse.baseUrl}${path}`, {
      dispatcher: this.agent,
      method,
      headers: { "content-type": "application/json", authorization: `Bearer ${this.token}` },
      body: method === "GET" ? null : JSON.stringify(body),
      signal,
    });
    const answer = (await response.body.json()) as Json;
    if (response.statusCode !== 200)
      throw new Error(`${method} ${path}: ${String(response.statusCode)} ${JSON.stringify(answer)}`);
    return answer;
  }

  /** Closes the connections of an official registered with `keepAlive`. */
  async close(): Promise<void> {
    await this.agent?.destroy();
  }

  async createRoom(body: Json = { preset: "private_chat" }): Promise<string> {
    return String((await this.call("POST", "/_matrix/client/v3/createRoom", body))["room_id"]);
  }

  async invite(room: string, userId: string): Promise<void> {
    await this.call("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/invite`, {
      user_id: userId,
    });
  }

  async join(room: string): Promise<void> {
    await this.call("POST", `/_matrix/client/v3/join/${encodeURIComponent(room)}`);
  }

  async send(room: string, content: Json, type = "m.room.message"): Promise<string> {
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/${type}/${randomUUID()}`;
    return String((await this.call("PUT", path, content))["event_id"]);
  }

  async say(room: string, body: string): Promise<string> {
    return this.send(room, { msgtype: "m.text", body });
  }

  async setState(room: string, type: string, content: Json, stateKey = ""): Promise<void> {
    await this.call(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/${type}/${encodeURIComponent(stateKey)}`,
      content,
    );
  }

  async state(room: string, type: string, stateKey = ""): Promise<Json> {
    return this.call(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/${type}/${encodeURIComponent(stateKey)}`,
    );
  }

  async redact(room: string, eventId: string): Promise<void> {
    await this.call(
      "PUT",
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/redact/${encodeURIComponent(eventId)}/${randomUUID()}`,
      {},
    );
  }

  async joinedMembers(room: string): Promise<string[]> {
    const answer = await this.call(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/joined_members`,
    );
    return Object.keys(answer["joined"] as Json);
  }

  /**
   * Long-polls /sync for the room's messages, one loop until stop(), handing each body to `listener` as its
   * answer arrives. A failed sync is retried after a second, as a client would, and said on stderr.
   */
  async follow(room: string, listener: (body: string) => void): Promise<{ stop(): Promise<void> }> {
    const filter = encodeURIComponent(
      JSON.stringify({
        presence: { types: [] },
        account_data: { types: [] },
        room: {
          rooms: [room],
          // Far above what one answer holds in a burst: a "limited" timeline would drop messages.
          timeline: { types: ["m.room.message"], limit: 1000 },
          state: { types: [] },
          ephemeral: { types: [] },
          account_data: { types: [] },
        },
      }),
    );
    const sync = (since: string | undefined, signal?: AbortSignal): Promise<Json> =>
      this.call(
        "GET",
        `/_matrix/client/v3/sync?filter=${filter}&timeout=${since === undefined ? "0" : `30000&since=${encodeURIComponent(since)}`}`,
        {},
        signal,
      );
    let since = String((await sync(undefined))["next_batch"]);
    const stopping = new AbortController();
    const loop = (async () => {
      for (;;) {
        let answer: Json;
        try {
          answer = await sync(since, stopping.signal);
        } catch (error) {
          if (stopping.signal.aborted) return;
          process.stderr.write(`${this.userId}'s sync failed, retrying: ${String(error)}\n`);
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        since = String(answer["next_batch"]);
        const joined = (answer["rooms"] as { join?: Record<string, { timeline?: Json }> } | undefined)?.join;
        const timeline = joined?.[room]?.timeline;
        if (timeline?.["limited"] === true)
          process.stderr.write(`${this.userId}'s sync skipped messages (limited timeline)\n`);
        for (const event of (timeline?.["events"] ?? []) as { content?: { body?: unknown } }[]) {
          const body = event.content?.body;
          if (typeof body === "string") listener(body);
        }
      }
    })();
    return {
      stop: async () => {
        stopping.abort();
        await loop;
      },
    };
  }

  /**
   * Accepts every pending invitation; resolves with the rooms joined. Synapse answers a repeated identical
   * /sync from a cache for two minutes, so each call differs in its (for an initial sync meaningless) timeout.
   */
  async acceptInvitations(): Promise<string[]> {
    this.syncs += 1;
    const answer = await this.call("GET", `/_matrix/client/v3/sync?timeout=${String(this.syncs)}`);
    const invited = Object.keys((answer["rooms"] as Json | undefined)?.["invite"] ?? {});
    for (const room of invited) await this.join(room);
    return invited;
  }

  /** The rooms the official is in. */
  async joinedRooms(): Promise<string[]> {
    return (await this.call("GET", "/_matrix/client/v3/joined_rooms"))["joined_rooms"] as string[];
  }

  /** The room's latest events, oldest first. */
  async timeline(room: string, limit = 50): Promise<Json[]> {
    const answer = await this.call(
      "GET",
      `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/messages?dir=b&limit=${String(limit)}`,
    );
    return [...(answer["chunk"] as Json[])].reverse();
  }

  /** The room's messages (and reactions) from `sender`, oldest first. */
  async eventsFrom(room: string, sender: string, type = "m.room.message"): Promise<Json[]> {
    return (await this.timeline(room)).filter((e) => e["sender"] === sender && e["type"] === type);
  }

  async displayName(userId: string): Promise<unknown> {
    return (await this.call("GET", `/_matrix/client/v3/profile/${encodeURIComponent(userId)}`))[
      "displayname"
    ];
  }

  async upload(bytes: Buffer, contentType: string, name: string): Promise<string> {
    const response = await request(
      `${this.synapse.baseUrl}/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`,
      {
        dispatcher: this.agent,
        method: "POST",
        headers: { "content-type": contentType, authorization: `Bearer ${this.token}` },
        body: bytes,
      },
    );
    const answer = (await response.body.json()) as Json;
    if (response.statusCode !== 200) throw new Error(`upload: ${JSON.stringify(answer)}`);
    return String(answer["content_uri"]);
  }

  async download(mxc: string): Promise<Buffer> {
    const [server, id] = mxc.slice("mxc://".length).split("/");
    const response = await request(
      `${this.synapse.baseUrl}/_matrix/client/v1/media/download/${server ?? ""}/${id ?? ""}`,
      { dispatcher: this.agent, headers: { authorization: `Bearer ${this.token}` } },
    );
    if (response.statusCode !== 200) throw new Error(`download: ${String(response.statusCode)}`);
    return Buffer.from(await response.body.arrayBuffer());
  }
}

/** The content of an event. */
export function contentOf(event: Json | undefined): Json {
  return (event?.["content"] ?? {}) as Json;
}

/**
 * PUTs an Application Service transaction straight to the bridge, as a homeserver would (the test knows the
 * hs_token): how a test shows the bridge events Synapse itself would not send, such as a user of another
 * homeserver speaking in a room. Resolves with the bridge's HTTP status.
 */
export async function putTransaction(
  scene: MatrixScene,
  bridgeUrl: string,
  events: unknown[],
  txnId = `test-${randomUUID()}`,
  /** More fields of the transaction, such as its to-device messages. */
  extra: Json = {},
): Promise<number> {
  const response = await request(`${bridgeUrl}/_matrix/app/v1/transactions/${txnId}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${scene.registration.hs_token}`, "content-type": "application/json" },
    body: JSON.stringify({ ...extra, events }),
  });
  await response.body.dump();
  return response.statusCode;
}
