/**
 * Scenes for the Stashcat bridge's tests: the Stashcat-compatible server, a nats-server, Lower Saxony's
 * officers as Stashcat clients (the project's own client code with the seed's keys), and German federal
 * officers as deliveries the core would publish.
 */
import { randomUUID, type KeyObject } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Bus } from "../../gateway/platform/bus/Bus.js";
import { buckets } from "../../schemas/contract/topology.js";
import type { LocalNatsServer } from "../harness/servers/LocalNatsServer.js";
import { freePort } from "../harness/servers/serverProcess.js";
import type { Logger } from "../../gateway/platform/log.js";
import { LinkStore } from "../../gateway/platform/stores/LinkStore.js";
import { validateStashcatConfig, type LoadedStashcatConfig } from "../../bridges/stashcat/config.js";
import type { StashcatBridgeConfig } from "../../bridges/stashcat/config.types.js";
import type { ConfigInput } from "../harness/configInput.js";
import { decryptText, encryptText, unlockPrivateKey, unwrapChatKey } from "../../bridges/stashcat/crypto.js";
import { StashcatServer, type StashcatServerOptions } from "../harness/servers/stashcat/StashcatServer.js";
import type { Seed, SeedUser } from "../harness/servers/stashcat/seed.js";
import { StashcatBridge, type RunningStashcatBridge } from "../../bridges/stashcat/StashcatBridge.js";
import { StashcatClient, type ChatRef, type StashcatMessage } from "../../bridges/stashcat/StashcatClient.js";
import { startNatsOrSkip } from "./nats.js";
import { scratchDir } from "./scratchDir.js";
import { weberXmppRoom } from "./matrixScenes.js";

export const SERVICE_ACCOUNT = 4700;
export const MEYER = 4711;
export const SCHULZ = 4712;
export const einsatz: ChatRef = { type: "channel", id: 1001 };

export interface StashcatScene {
  nats: LocalNatsServer;
  server: StashcatServer;
  seed: Seed;
  /** The bridge's config, as loadStashcatConfig gives it. */
  config: LoadedStashcatConfig;
  stop(): Promise<void>;
}

export function seedUser(seed: Seed, id: number): SeedUser {
  const user = seed.users.find((u) => u.id === id);
  if (user === undefined) throw new Error(`no seed user ${String(id)}`);
  return user;
}

/** The bridge's config for a Stashcat-compatible server, as loadStashcatConfig gives it: the service account. */
export async function stashcatBridgeConfigFor(server: StashcatServer): Promise<LoadedStashcatConfig> {
  const account = seedUser(server.seed, SERVICE_ACCOUNT);
  return {
    config: validateStashcatConfig({
      instance: "ni",
      apiUrl: server.apiUrl,
      pushUrl: server.pushUrl,
      email: account.email,
      password: { value: account.password },
      deviceId: `bridge${randomUUID().replace(/-/g, "")}`,
      agency: "polizei-ni",
      listen: { host: "127.0.0.1", port: await freePort() },
      // The tests' file servers (the other networks' files) listen on loopback, on ports chosen at random.
      attachments: { hosts: ["127.0.0.1"] },
    }),
    password: account.password,
    encryptionPassword: account.encryptionPassword,
  };
}

/** nats-server and a Stashcat-compatible server (with `options`); undefined when nats-server is missing. */
export async function startStashcatScene(
  options: StashcatServerOptions = {},
): Promise<StashcatScene | undefined> {
  const nats = await startNatsOrSkip();
  if (nats === undefined) return undefined;
  const server = await StashcatServer.start(options);
  const config = await stashcatBridgeConfigFor(server);
  return {
    nats,
    server,
    seed: server.seed,
    config,
    stop: async () => {
      await server.stop();
      await nats.stop();
    },
  };
}

export function startStashcatBridge(
  bus: Bus,
  scene: StashcatScene,
  log: Logger,
  config: ConfigInput<StashcatBridgeConfig> = {},
): Promise<RunningStashcatBridge> {
  const attachments = { ...scene.config.config.attachments, ...config.attachments };
  return StashcatBridge.start(
    bus,
    { ...scene.config, config: validateStashcatConfig({ ...scene.config.config, ...config, attachments }) },
    log,
  );
}

/**
 * A config file for `fedgate bridge stashcat`, as an operator writes one, for the scene's server and NATS:
 * the bridge as a process of its own, which a test may kill.
 */
export async function writeStashcatBridgeConfig(
  scene: StashcatScene,
  overrides: ConfigInput<StashcatBridgeConfig> = {},
): Promise<string> {
  const { config, encryptionPassword } = scene.config;
  const file = join(await scratchDir("stashcat-bridge"), "config.yaml");
  await writeFile(
    file,
    stringify({
      nats: { url: scene.nats.url },
      log: { level: "info" },
      bridges: {
        stashcat: {
          ...config,
          encryptionPassword: { value: encryptionPassword },
          // Probes on any free port: tests run side by side.
          status: { host: "127.0.0.1", port: 0 },
          ...overrides,
        },
      },
    }),
  );
  return file;
}

/** Links a Stashcat channel with an XMPP room of Weber's, named after the link. */
export async function linkChannel(bus: Bus, linkId: string, chat: ChatRef = einsatz): Promise<void> {
  const links = new LinkStore(await bus.keyValue(buckets.links));
  await links.create({
    id: linkId,
    endpoints: [
      { ...weberXmppRoom, conversation: `${linkId}@conference.bpol.localhost` },
      {
        network: "stashcat",
        instance: "ni",
        conversation: `${chat.type}:${String(chat.id)}`,
        agency: "polizei-ni",
      },
    ],
  });
}

export function stashcatTarget(chat: ChatRef = einsatz): {
  network: string;
  instance: string;
  conversation: string;
  agency: string;
} {
  return {
    network: "stashcat",
    instance: "ni",
    conversation: `${chat.type}:${String(chat.id)}`,
    agency: "polizei-ni",
  };
}

/**
 * A Lower Saxony officer on Stashcat, using the project's client code as a Stashcat client would: their
 * private key unlocked with their encryption password, chat keys unwrapped from what the server hands out.
 */
export class Officer {
  private readonly keys = new Map<string, Buffer>();

  private constructor(
    readonly client: StashcatClient,
    private readonly privateKey: KeyObject,
  ) {}

  static login(scene: StashcatScene, id: number, log: Logger): Promise<Officer> {
    return Officer.loginTo(scene.server.apiUrl, seedUser(scene.seed, id), log);
  }

  static async loginTo(
    apiUrl: string,
    account: { email: string; password: string; encryptionPassword: string },
    log: Logger,
  ): Promise<Officer> {
    const client = await StashcatClient.connect({
      apiUrl,
      email: account.email,
      password: account.password,
      deviceId: `officer${randomUUID().replace(/-/g, "")}`,
      appName: "fedgate-tests",
      log,
    });
    return new Officer(client, unlockPrivateKey(await client.lockedPrivateKey(), account.encryptionPassword));
  }

  async chatKey(chat: ChatRef): Promise<Buffer> {
    const name = `${chat.type}:${String(chat.id)}`;
    let key = this.keys.get(name);
    if (key === undefined) {
      key = unwrapChatKey((await this.client.chatKeyField(chat)) ?? "", this.privateKey);
      this.keys.set(name, key);
    }
    return key;
  }

  /** Writes in a chat, encrypted as Stashcat's clients do. */
  async say(
    chat: ChatRef,
    text: string,
    extra: { replyTo?: number; fileIds?: number[] } = {},
  ): Promise<number> {
    const sealed = encryptText(text, await this.chatKey(chat));
    const sent = await this.client.send(chat, {
      text: sealed.text,
      iv: sealed.iv,
      encrypted: true,
      ...extra,
    });
    return sent.id;
  }

  /** The chat's latest messages, with their text decrypted. */
  async read(chat: ChatRef): Promise<(StashcatMessage & { plain: string })[]> {
    const key = await this.chatKey(chat);
    const messages = await this.client.messages(chat, { limit: 50 });
    return messages.map((m) => ({
      ...m,
      plain: m.encrypted && !m.deleted ? decryptText(m.text, m.iv ?? "", key) : m.text,
    }));
  }
}
