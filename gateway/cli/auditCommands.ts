/** `fedgate audit verify`: checks the audit trail's chain in the stream (see core/routing/AuditChain.ts). */
import type { Command } from "commander";
import { PermanentError } from "../../schemas/contract/errors.js";
import { validateAuditBatch } from "../../schemas/contract/schemas.js";
import { subjects } from "../../schemas/contract/subjects.js";
import type { StreamName } from "../../schemas/contract/topology.js";
import { AuditChainVerifier } from "../core/routing/AuditChain.js";
import { toolBus, withBusOptions, type ToolBusOptions } from "./toolBus.js";
import { readText } from "../platform/config/loadConfig.js";

const AUDIT_STREAM: StreamName = "FEDGATE_AUDIT";

async function verifyCommand(opts: ToolBusOptions & { keyFile?: string }): Promise<void> {
  // The key as the core reads gateway.auditKey from a file: its text, trimmed.
  const key =
    opts.keyFile === undefined ? undefined : Buffer.from((await readText(opts.keyFile)).trim(), "utf8");
  const bus = await toolBus(opts);
  const verifier = new AuditChainVerifier(key);
  try {
    const stored = await bus.storedRange(AUDIT_STREAM);
    if (stored.messages > 0) {
      // Everything stored when the check began; batches stored meanwhile are left to the next check. The
      // count ends the reading too: a stream whose last message was deleted never delivers stored.last.
      let done!: () => void;
      const complete = new Promise<void>((resolve) => (done = resolve));
      let read = 0;
      const reading = await bus.follow(AUDIT_STREAM, subjects.auditAll, "start", (message) => {
        if (message.seq > stored.last) return;
        read++;
        verifier.add(message.seq, message.data, (bytes) =>
          validateAuditBatch(JSON.parse(Buffer.from(bytes).toString("utf8"))),
        );
        if (message.seq === stored.last || read === stored.messages) done();
      });
      await complete;
      await reading.stop();
    }
  } finally {
    await bus.close();
  }
  const report = verifier.result();
  const summary =
    `${String(report.batches)} batches, ${String(report.records)} records from ${String(report.writers)} ` +
    `core processes` +
    (key === undefined ? "; HMACs not checked (no --key-file)" : "; every HMAC checked") +
    (report.unchained === 0
      ? ""
      : `; ${String(report.unchained)} batches of adapters, which are not chained`);
  const [first] = report.breaks;
  if (first === undefined) {
    process.stdout.write(`audit trail intact: ${summary}\n`);
    return;
  }
  for (const found of report.breaks)
    process.stdout.write(
      `broken at stream seq ${String(found.streamSeq)}${found.writer === undefined ? "" : ` (${found.writer})`}: ${found.problem}\n`,
    );
  throw new PermanentError(
    "FG_AUDIT_BROKEN",
    `audit trail broken: first at stream seq ${String(first.streamSeq)}, ${String(report.breaks.length)} in all (${summary})`,
  );
}

export function auditCommands(program: Command): void {
  withBusOptions(
    program
      .command("audit")
      .description("the audit trail")
      .command("verify")
      .description(
        "check that no audit batch the core stored was edited, removed or inserted; names the first break",
      ),
  )
    .option("--key-file <file>", "the core's gateway.auditKey, to check each batch's HMAC too")
    .action(verifyCommand);
}
