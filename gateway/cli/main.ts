#!/usr/bin/env node
/** The fedgate command: the routing core, the bridges, config checks, federation and event tools. */
import { Command } from "commander";
import { bridgeNetworks } from "../../bridges/index.js";
import { FedgateError } from "../../schemas/contract/errors.js";
import { bridgeCommand, type BridgeCommandOptions } from "./bridgeCommand.js";
import { checkConfigCommand } from "./configCheck.js";
import { sendEventCommand, tailCommand, eventStatusCommand } from "./eventsCommands.js";
import { federationCommands } from "./federationCommands.js";
import { auditCommands } from "./auditCommands.js";
import { gatewayCommand } from "./gatewayCommand.js";
import { withBusOptions } from "./toolBus.js";

const program = new Command("fedgate")
  .description("Federation gateway between the messengers of public authorities")
  .showHelpAfterError();

program
  .command("gateway")
  .description("run the routing core")
  .requiredOption("-c, --config <file>", "config file (YAML)")
  .action((opts: { config: string }) => gatewayCommand(opts.config));

program
  .command("bridge")
  .description("run a protocol bridge")
  .argument("<network>", bridgeNetworks.join(", "))
  .requiredOption("-c, --config <file>", "config file (YAML)")
  .option("--generate-registration", "write the registration the bridge's server needs (Matrix), then exit")
  .option("--url <url>", "with --generate-registration: where the homeserver reaches the bridge")
  .action((network: string, opts: BridgeCommandOptions) => bridgeCommand(network, opts));

program
  .command("config")
  .description("configuration tools")
  .command("check")
  .description("validate a config file and the policy it names, then exit")
  .requiredOption("-c, --config <file>", "config file (YAML)")
  .action((opts: { config: string }) => checkConfigCommand(opts.config));

const events = program.command("events").description("publish, follow and look up events on the bus");
withBusOptions(events.command("send").description("publish a test message as if an adapter had received it"))
  .requiredOption("--from <network/instance/conversation>", "source conversation")
  .requiredOption("--text <text>", "message text")
  .option("--sender <userId>", "sender's native user id", "demo-user")
  .option("--name <displayName>", "sender's display name")
  .option("--marking <markingId>", "classification marking")
  .action(sendEventCommand);
withBusOptions(events.command("tail").description("print events on the bus as they arrive"))
  .argument("<what>", "outbound, audit, deadletter or inbound")
  .option("--all", "start from the first stored message instead of new ones")
  .option("--json", "print each message as stored, one JSON document a line")
  .action(tailCommand);
withBusOptions(
  events
    .command("status")
    .description("what became of a routed message: each target's decision and delivery (metadata only)"),
)
  .argument("<id>", "the event id")
  .option("--json", "print the answer as GET /v1/events/{id} gives it")
  .action(eventStatusCommand);

federationCommands(program);
auditCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof FedgateError) {
    process.stderr.write(`fedgate: ${error.code}: ${error.message}\n`);
  } else {
    process.stderr.write(
      `fedgate: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exitCode = 1;
}
