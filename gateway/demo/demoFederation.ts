/**
 * The local demo federation: a nats-server, the routing core with the example policy (German and French
 * agencies), and one cross-border conversation linked. Each bridge adds its server and accounts here.
 * Everything listens on 127.0.0.1; demo.json describes it for people and scripts.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import type { Config, Link } from "../../schemas/types.js";
import { schemaDir } from "../contract/schemas.js";
import { loadConfig } from "../config/loadConfig.js";
import { GatewayService } from "../GatewayService.js";
import type { Logger } from "../log.js";
import { bridges, type DemoAccount, type DemoPart } from "../../bridges/index.js";
import { LocalNatsServer } from "./LocalNatsServer.js";

/** What demo.json holds: enough for a script to drive the demo. */
export interface DemoDescription {
  dir: string;
  configFile: string;
  policyFile: string;
  nats: { url: string };
  admin: { url: string; token: string };
  /** Each bridge's servers, by name. */
  servers: Record<string, string>;
  links: Link[];
  accounts: DemoAccount[];
  try: { description: string; command: string }[];
}

export const demoLink: Link = {
  id: "demo-einsatz",
  description:
    "Cross-border operations room: Bundespolizei (XMPP), Polizei Niedersachsen (Stashcat), Ministère de l'Intérieur (Tchap)",
  endpoints: [
    { network: "xmpp", instance: "bpol", conversation: "einsatz@conference.bpol.localhost", agency: "bpol" },
    { network: "stashcat", instance: "ni", conversation: "channel:1001", agency: "polizei-ni" },
    // The demo's Synapse gives the room its id when it creates it.
    { network: "matrix", instance: "tchap", conversation: "!einsatz:tchap.localhost", agency: "dinum-mi" },
  ],
};

/**
 * A bridge's demo config with the other bridges' file servers added to its attachments.hosts: everything runs
 * on loopback, which a bridge fetches files from only when its config lists the host.
 */
function withFileServers(part: DemoPart, parts: [string, DemoPart][]): Record<string, unknown> {
  const attachments = (part.config["attachments"] ?? {}) as { hosts?: string[] };
  const others = parts.filter(([, other]) => other !== part).flatMap(([, other]) => other.fileServers);
  return {
    ...part.config,
    attachments: { ...attachments, hosts: [...(attachments.hosts ?? []), ...others] },
  };
}

export class DemoFederation {
  private constructor(
    readonly description: DemoDescription,
    /** Everything started, stopped in reverse order. */
    private readonly stops: (() => Promise<void>)[],
  ) {}

  static async start(log: Logger, dir?: string): Promise<DemoFederation> {
    const workDir = resolve(dir ?? (await mkdtemp(join(tmpdir(), "fedgate-demo-"))));
    await mkdir(workDir, { recursive: true });
    const stops: (() => Promise<void>)[] = [];
    try {
      const nats = await LocalNatsServer.start({ storeDir: join(workDir, "nats") });
      stops.push(() => nats.stop());
      const parts: [string, DemoPart][] = [];
      for (const [network, bridge] of Object.entries(bridges)) {
        if (bridge.startDemo === undefined) continue;
        process.stdout.write(`fedgate demo: starting the ${network} side…\n`);
        const part = await bridge.startDemo(workDir, log);
        stops.push(() => part.stop());
        parts.push([network, part]);
      }

      const policyFile = join(workDir, "policy.yaml");
      await copyFile(join(schemaDir, "examples", "policy.yaml"), policyFile);
      const token = randomBytes(24).toString("base64url");
      const config: Config = {
        nats: { url: nats.url },
        gateway: { policyFile: "policy.yaml", ackWaitMs: 5000 },
        admin: { host: "127.0.0.1", port: 0, token: { value: token } },
        log: { level: "info" },
        links: [
          {
            ...demoLink,
            endpoints: demoLink.endpoints.map((endpoint) => {
              const conversation = parts.find(([network]) => network === endpoint.network)?.[1].conversation;
              return conversation === undefined ? endpoint : { ...endpoint, conversation };
            }) as Link["endpoints"],
          },
        ],
        bridges: Object.fromEntries(parts.map(([network, part]) => [network, withFileServers(part, parts)])),
      };
      const configFile = join(workDir, "config.yaml");
      await writeFile(configFile, stringify(config));
      const loaded = await loadConfig(configFile, {});
      const gateway = await GatewayService.start(loaded, log);
      stops.push(() => gateway.stop());
      for (const [network] of parts) {
        const run = bridges[network]?.run;
        if (run !== undefined) stops.push(await run(loaded, log));
      }

      const cli = "npx fedgate";
      const [xmpp, stashcat] = demoLink.endpoints;
      const description: DemoDescription = {
        dir: workDir,
        configFile,
        policyFile,
        nats: { url: nats.url },
        admin: { url: gateway.adminUrl ?? "", token },
        servers: Object.assign({}, ...parts.map(([, part]) => part.servers)) as Record<string, string>,
        links: gateway.links.list(),
        accounts: parts.flatMap(([, part]) => part.accounts),
        try: [
          { description: "follow deliveries", command: `${cli} events tail outbound --nats ${nats.url}` },
          { description: "follow policy decisions", command: `${cli} events tail audit --nats ${nats.url}` },
          ...parts.flatMap(([, part]) => part.try),
          {
            description: "an allowed message, as if Bundespolizei had written in the linked room",
            command: `${cli} events send --nats ${nats.url} --from xmpp/bpol/${xmpp.conversation} --sender officer@bpol.localhost --name "Kommissarin Weber" --text "Lagebesprechung 14 Uhr"`,
          },
          {
            description:
              "a denied one: VS-NfD from Niedersachsen may not reach Tchap (that route is unmarked only)",
            command: `${cli} events send --nats ${nats.url} --from stashcat/ni/${stashcat.conversation} --sender 4711 --name "POK Meyer" --marking DE-VS-NFD --text "Nur für den Dienstgebrauch"`,
          },
          {
            description: "list links",
            command: `curl -s -H "Authorization: Bearer ${token}" ${gateway.adminUrl ?? ""}/v1/links`,
          },
        ],
      };
      await writeFile(join(workDir, "demo.json"), JSON.stringify(description, null, 2) + "\n");
      return new DemoFederation(description, stops);
    } catch (error) {
      await DemoFederation.stopAll(stops);
      throw error;
    }
  }

  private static async stopAll(stops: (() => Promise<void>)[]): Promise<void> {
    for (const stop of [...stops].reverse()) await stop().catch(() => undefined);
  }

  get descriptionFile(): string {
    return join(this.description.dir, "demo.json");
  }

  async stop(): Promise<void> {
    await DemoFederation.stopAll(this.stops);
  }
}
