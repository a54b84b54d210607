/**
 * The demo federation run the way an operator runs it, for the chaos suite: the demo's servers and accounts
 * (each bridge's startDemo), one config file like the demo's, and the gateway and each bridge as processes
 * of their own (`fedgate gateway`, `fedgate bridge <network>`), so that a fault can kill, freeze or restart
 * any one of them. The Stashcat-compatible server keeps its state in memory; its clients reach it through
 * relays, whose going down and coming back is its restart.
 */
import type { ConfigInput } from "../harness/configInput.js";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { vi } from "vitest";
import { stringify } from "yaml";
import type { Config, Link } from "../../schemas/types.js";
import { demoParts, type DemoPart } from "../harness/demo/demoParts.js";
import { LocalSynapse } from "../harness/servers/matrix/LocalSynapse.js";
import { StashcatServer } from "../harness/servers/stashcat/StashcatServer.js";
import { LocalProsody } from "../harness/servers/xmpp/LocalProsody.js";
import { schemaDir } from "../../schemas/contract/schemas.js";
import { PARTITIONS, partitionOf } from "../../schemas/contract/subjects.js";
import { buckets } from "../../schemas/contract/topology.js";
import { demoLink } from "../harness/demo/demoFederation.js";
import { LocalNatsServer } from "../harness/servers/LocalNatsServer.js";
import { createLogger } from "../../gateway/platform/log.js";
import { runFedgate, type FedgateProcess } from "../helpers/processes.js";
import { scratchDir } from "../helpers/scratchDir.js";
import { processGone, processListeningOn } from "./listeningProcess.js";
import {
  MatrixParticipant,
  StashcatParticipant,
  XmppParticipant,
  type Account,
  networks,
  type Network,
  type Participant,
} from "./participants.js";
import { TcpRelay } from "../helpers/tcpRelay.js";
import type { StreamRecord } from "./stream.js";

export interface ChaosSettings {
  /**
   * The core's ack wait (gateway.ackWaitMs): how long an event may stay in work before JetStream hands it
   * out again. The partition lease lasts ackWaitMs + 3 s. The suite's promise: flow is back within
   * ackWaitMs + 10 s of a fault's end.
   */
  ackWaitMs: number;
  /** Core replicas, each a process of its own. */
  gatewayReplicas: number;
}

export const defaultSettings: ChaosSettings = { ackWaitMs: 5000, gatewayReplicas: 1 };

const log = createLogger("silent");
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A process asked to stop, and killed if it has not within 10 s. */
async function terminate(process_: FedgateProcess): Promise<void> {
  const child = process_.child;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGCONT");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await process_.exited;
  clearTimeout(timer);
}

/**
 * Runs `during` while noting the servers each launcher starts: a demo part starts its server and hands out
 * only a way to stop it, and a fault needs the server itself.
 */
async function noting<T>(
  launcher: { start: (...args: never[]) => Promise<T> },
  during: () => Promise<void>,
): Promise<T[]> {
  const spy = vi.spyOn(launcher, "start");
  try {
    await during();
    return await Promise.all(spy.mock.results.map((result) => result.value as Promise<T>));
  } finally {
    spy.mockRestore();
  }
}

export class ChaosFederation {
  readonly gateways: FedgateProcess[] = [];
  private readonly bridgeProcesses = new Map<Network, FedgateProcess>();
  /** Every process started, for the stop, by what it runs. */
  private readonly processes: { name: string; process: FedgateProcess }[] = [];

  private constructor(
    readonly settings: ChaosSettings,
    readonly configFile: string,
    readonly nats: LocalNatsServer,
    readonly prosody: LocalProsody,
    readonly synapse: LocalSynapse,
    readonly stashcat: StashcatServer,
    private readonly relays: { api: TcpRelay; push: TcpRelay },
    readonly link: Link,
    private readonly accounts: Map<Network, Account>,
    private readonly stops: (() => Promise<void>)[],
  ) {}

  /** Starts the servers, writes the config, starts the core replicas and the bridges; resolves once all serve. */
  static async start(name: string, settings: ChaosSettings = defaultSettings): Promise<ChaosFederation> {
    const dir = await scratchDir(`chaos-${name}`);
    const stops: (() => Promise<void>)[] = [];
    let federation: ChaosFederation;
    try {
      const nats = await LocalNatsServer.start({ storeDir: join(dir, "nats") });
      stops.push(() => nats.stop());
      const parts = new Map<Network, DemoPart>();
      let prosodies: LocalProsody[] = [];
      let synapses: LocalSynapse[] = [];
      const stashcats = await noting(StashcatServer, async () => {
        synapses = await noting(LocalSynapse, async () => {
          prosodies = await noting(LocalProsody, async () => {
            for (const network of networks) {
              // Its Matrix participant reads and writes through the plain client-server API.
              const part = await demoParts[network](dir, log, { plainTchapRoom: true });
              stops.push(() => part.stop());
              parts.set(network, part);
            }
          });
        });
      });
      const [prosody, synapse, stashcat] = [prosodies[0], synapses[0], stashcats[0]];
      if (prosody === undefined || synapse === undefined || stashcat === undefined)
        throw new Error("a demo part started no server");

      const relays = {
        api: await TcpRelay.start(Number(new URL(stashcat.apiUrl).port)),
        push: await TcpRelay.start(Number(new URL(stashcat.pushUrl).port)),
      };
      stops.push(
        () => relays.api.stop(),
        () => relays.push.stop(),
      );
      const sections = new Map([...parts].map(([network, part]) => [network, part.config]));
      sections.set("stashcat", {
        ...sections.get("stashcat"),
        apiUrl: relays.api.through(stashcat.apiUrl),
        pushUrl: relays.push.through(stashcat.pushUrl),
      });

      // The demo's config: its link (the Matrix room as its Synapse named it) and each bridge's section.
      const link: Link = {
        ...demoLink,
        endpoints: demoLink.endpoints.map((endpoint) => ({
          ...endpoint,
          conversation: parts.get(endpoint.network as Network)?.conversation ?? endpoint.conversation,
        })) as Link["endpoints"],
      };
      await copyFile(join(schemaDir, "examples", "policy.yaml"), join(dir, "policy.yaml"));
      const config: ConfigInput<Config> = {
        nats: { url: nats.url },
        gateway: { policyFile: "policy.yaml", ackWaitMs: settings.ackWaitMs },
        log: { level: "info" },
        links: [link],
        bridges: Object.fromEntries(sections),
      };
      const configFile = join(dir, "config.yaml");
      await writeFile(configFile, stringify(config));

      const accounts = new Map<Network, Account>();
      for (const [network, part] of parts) {
        const account = part.accounts[0];
        if (account !== undefined) accounts.set(network, account);
      }
      const stashcatAccount = accounts.get("stashcat");
      if (stashcatAccount !== undefined)
        accounts.set("stashcat", { ...stashcatAccount, server: relays.api.through(stashcat.apiUrl) });

      federation = new ChaosFederation(
        settings,
        configFile,
        nats,
        prosody,
        synapse,
        stashcat,
        relays,
        link,
        accounts,
        stops,
      );
    } catch (error) {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      throw error;
    }
    try {
      await federation.startGateways();
      for (const network of networks) await federation.startBridge(network);
    } catch (error) {
      await federation.stop();
      throw error;
    }
    return federation;
  }

  private run(args: string[]): FedgateProcess {
    const started = runFedgate([...args, "--config", this.configFile]);
    this.processes.push({ name: args.join("-"), process: started });
    return started;
  }

  private async startGateways(): Promise<void> {
    // The first creates the declared link before the others race to.
    const first = this.run(["gateway"]);
    this.gateways.push(first);
    await first.waitFor("gateway consuming inbound events", 60_000);
    for (let i = 1; i < this.settings.gatewayReplicas; i++) {
      const replica = this.run(["gateway"]);
      this.gateways.push(replica);
      await replica.waitFor("gateway consuming inbound events", 60_000);
    }
    if (this.settings.gatewayReplicas > 1) {
      // The work is split once each replica holds its share.
      const share = PARTITIONS / this.settings.gatewayReplicas;
      await Promise.all(this.gateways.map((g) => g.waitFor(`"held":${share}`, 60_000)));
    }
  }

  /** Starts `network`'s bridge process; resolves once it says it started. */
  async startBridge(network: Network): Promise<FedgateProcess> {
    const bridge = this.run(["bridge", network]);
    this.bridgeProcesses.set(network, bridge);
    await bridge.waitFor("bridge started", 60_000);
    return bridge;
  }

  bridge(network: Network): FedgateProcess {
    const bridge = this.bridgeProcesses.get(network);
    if (bridge === undefined) throw new Error(`no ${network} bridge`);
    return bridge;
  }

  /** The linked conversation's native id on `network`. */
  conversation(network: Network): string {
    const endpoint = this.link.endpoints.find((e) => e.network === network);
    if (endpoint === undefined) throw new Error(`the link has no ${network} endpoint`);
    return endpoint.conversation;
  }

  private account(network: Network): Account {
    const account = this.accounts.get(network);
    if (account === undefined) throw new Error(`the demo has no ${network} account`);
    return account;
  }

  /** The demo's people, each logged in and in the linked conversation. */
  async participants(): Promise<Participant[]> {
    return [
      await XmppParticipant.join(
        this.prosody.c2sUrl,
        this.account("xmpp"),
        this.conversation("xmpp"),
        "Weber",
      ),
      await MatrixParticipant.login(this.account("matrix"), this.conversation("matrix")),
      await StashcatParticipant.login(
        this.account("stashcat").server,
        this.account("stashcat"),
        Number(this.conversation("stashcat").split(":")[1]),
      ),
    ];
  }

  /** kill -9 of `process_`; resolves once it is gone. */
  async kill(process_: FedgateProcess): Promise<void> {
    process_.child.kill("SIGKILL");
    await process_.exited;
  }

  /** SIGSTOP of `process_` for `ms`, then SIGCONT: a stall (GC pause, frozen VM) and its end. */
  async freeze(process_: FedgateProcess, ms: number): Promise<void> {
    process_.child.kill("SIGSTOP");
    await sleep(ms);
    process_.child.kill("SIGCONT");
  }

  /**
   * The core replica holding the leases of most of the linked conversations' partitions: the one whose
   * death stops their flow.
   */
  async replicaOfConversations(): Promise<FedgateProcess> {
    const nc = await connect({ servers: this.nats.url });
    try {
      const leases = await new Kvm(jetstream(nc)).open(buckets.leases);
      const holders = new Map<number, number>();
      for (const e of this.link.endpoints) {
        const entry = await leases.get(`partition.${partitionOf(e.network, e.instance, e.conversation)}`);
        // A lease names its replica as "<host>/<pid>/<random>".
        const pid = Number((entry?.json<string>() ?? "").split("/")[1]);
        holders.set(pid, (holders.get(pid) ?? 0) + 1);
      }
      const [pid] = [...holders].sort((a, b) => b[1] - a[1])[0] ?? [];
      const replica = this.gateways.find((g) => g.child.pid === pid);
      if (replica === undefined) throw new Error("no replica holds the conversations' partitions");
      return replica;
    } finally {
      await nc.close();
    }
  }

  /** How often the Stashcat bridge's push channel has been authenticated, by its own log. */
  stashcatPushLogins(): number {
    return this.bridge("stashcat").output().split("Stashcat push authenticated").length - 1;
  }

  /** kill -9 of nats-server; resolves once it is gone. */
  async killNats(): Promise<void> {
    const pid = await processListeningOn(this.nats.port);
    process.kill(pid, "SIGKILL");
    await processGone(pid);
  }

  /** Starts nats-server again on its port and store. */
  async startNats(): Promise<void> {
    await this.nats.restart();
  }

  /** The Stashcat server away for `ms` (every connection cut, its ports refusing), then back. */
  async restartStashcat(ms: number): Promise<void> {
    await Promise.all([this.relays.api.down(), this.relays.push.down()]);
    await sleep(ms);
    await Promise.all([this.relays.api.up(), this.relays.push.up()]);
  }

  /** For a person looking into a failure: the stream's raw record, where FEDGATE_CHAOS_LOGS names a folder. */
  async keepRecord(fault: string, record: StreamRecord): Promise<void> {
    const logs = process.env["FEDGATE_CHAOS_LOGS"];
    if (logs === undefined || logs === "") return;
    await mkdir(logs, { recursive: true });
    const plain = {
      fault,
      ...record,
      sent: [...record.sent],
      arrivals: [...record.arrivals],
      troubles: [...record.troubles],
    };
    await writeFile(
      join(logs, `${basename(dirname(this.configFile))}-record.json`),
      JSON.stringify(plain, (_, value: unknown) => (value instanceof Map ? [...value] : value)),
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map(({ process: p }) => terminate(p)));
    // For a person looking into a failure: every process's output, where FEDGATE_CHAOS_LOGS names a folder.
    const logs = process.env["FEDGATE_CHAOS_LOGS"];
    if (logs !== undefined && logs !== "") {
      await mkdir(logs, { recursive: true });
      for (const [i, { name, process: p }] of this.processes.entries())
        await writeFile(join(logs, `${basename(dirname(this.configFile))}-${i}-${name}.log`), p.output());
    }
    for (const stop of this.stops.reverse()) await stop().catch(() => undefined);
  }
}
