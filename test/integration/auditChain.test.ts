/**
 * The audit trail is tamper-evident: each batch the core stores carries the hash of the one it stored before,
 * so `fedgate audit verify` finds an edited, removed or inserted record, and names the first break.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditBatch } from "../../schemas/types.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { createLogger } from "../../gateway/platform/log.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { eventually, examplePolicyFile, message, writeGatewayConfig, xmppRoom } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { scratchDir } from "../helpers/scratchDir.js";
import { runFedgate, type FedgateProcess } from "../helpers/processes.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const EVENTS = 20;

describe.skipIf(nats === undefined)("audit chain - fedgate audit verify finds what was changed", () => {
  let gateway: FedgateProcess | undefined;
  let bus: JetStreamBus | undefined;
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager;

  let keyFile = "";

  /** Runs `fedgate audit verify`, with the core's key; resolves with its exit code and output. */
  async function verify(): Promise<{ code: number | null; output: string }> {
    const run = runFedgate(["audit", "verify", "--nats", nats?.url ?? "", "--key-file", keyFile]);
    const code = await run.exited;
    return { code, output: run.output() };
  }

  /** Stream sequences of the stored audit batches, in order. */
  async function stored(): Promise<number[]> {
    const { state } = await jsm.streams.info("FEDGATE_AUDIT");
    const seqs: number[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) seqs.push(seq);
    return seqs;
  }

  beforeAll(async () => {
    if (nats === undefined) return;
    keyFile = join(await scratchDir("audit"), "audit.key");
    await writeFile(keyFile, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    const config = await writeGatewayConfig(nats.url, {
      gateway: { policyFile: examplePolicyFile, ackWaitMs: 2000, auditKey: { file: keyFile } },
    });
    gateway = runFedgate(["gateway", "--config", config]);
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    await bus.ensureTopology();
    nc = await connect({ servers: nats.url });
    jsm = await jetstreamManager(nc);
    let records = 0;
    const audit = await bus.follow("FEDGATE_AUDIT", subjects.auditAll, "start", (m) => {
      records += (JSON.parse(Buffer.from(m.data).toString()) as AuditBatch).records.length;
    });
    for (let n = 0; n < EVENTS; n++) {
      const event = message(xmppRoom, `Lagemeldung ${String(n)}`);
      await bus.publish(subjects.inbound(event.source), encodeJson(event), { msgId: event.id });
      // One at a time: every event its own batches, so there is a chain to break.
      // The first waits for the gateway to start as well.
      await eventually(() => (records >= 2 * (n + 1) ? true : undefined), 30_000, "the event audited");
    }
    await audit.stop();
  });

  afterAll(async () => {
    gateway?.child.kill("SIGKILL");
    await nc?.close();
    await bus?.close();
    await nats?.stop();
  });

  it("audit chain - the trail as the core stored it verifies", async () => {
    const { code, output } = await verify();
    expect(output).toMatch(/intact/);
    expect(output).toMatch(/every HMAC checked/);
    expect(code).toBe(0);
  });

  it("audit chain - a record edited (removed and stored again, changed) is found, and named", async () => {
    const seqs = await stored();
    const victim = seqs[Math.floor(seqs.length / 2)] ?? 0;
    const original = await jsm.streams.getMessage("FEDGATE_AUDIT", { seq: victim });
    if (original === null) throw new Error(`no audit message at ${String(victim)}`);
    const batch = JSON.parse(Buffer.from(original.data).toString()) as AuditBatch;
    const [first] = batch.records;
    first.reason = "allowed";
    first.decision = "deliver";
    first.detail = "nothing to see here";
    await jsm.streams.deleteMessage("FEDGATE_AUDIT", victim);
    nc?.publish(original.subject, encodeJson(batch));
    await nc?.flush();
    const { code, output } = await verify();
    expect(code).not.toBe(0);
    expect(output).toMatch(/broken/);
    // The first break is where the removed batch was missed: the batch after it.
    expect(output).toContain(`stream seq ${String(seqs[seqs.indexOf(victim) + 1] ?? 0)}`);
  });

  it("audit chain - with the stream's last batch deleted, verify still ends (a cut-off end is not shown)", async () => {
    const seqs = await stored();
    await jsm.streams.deleteMessage("FEDGATE_AUDIT", seqs.at(-1) ?? 0);
    const { code, output } = await verify();
    // What the middle test changed is still found; the missing tail is not, as documented.
    expect(output).toMatch(/broken/);
    expect(code).not.toBe(0);
  }, 30_000);
});
