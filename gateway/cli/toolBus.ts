/**
 * The bus an operator tool (`fedgate events …`, `fedgate audit verify`) works on: `--config FILE` connects as
 * the config's processes do (its TLS, its login), `--nats URL` to a NATS that needs neither.
 */
import type { Command } from "commander";
import { JetStreamBus } from "../platform/bus/JetStreamBus.js";
import { connectBus } from "../platform/bus/connectBus.js";
import { loadConfig } from "../platform/config/loadConfig.js";
import { createLogger } from "../platform/log.js";
import { PermanentError } from "../../schemas/contract/errors.js";

export interface ToolBusOptions {
  nats?: string;
  config?: string;
}

/** Adds the two ways to name the bus to a command. */
export function withBusOptions(command: Command): Command {
  return command
    .option("--nats <url>", "NATS URL, for a NATS without TLS or login")
    .option("-c, --config <file>", "config file (YAML): NATS as it says, TLS and login included");
}

export async function toolBus(opts: ToolBusOptions): Promise<JetStreamBus> {
  const log = createLogger("warn");
  if (opts.config !== undefined && opts.nats !== undefined)
    throw new PermanentError("FG_CONFIG_INVALID", "give --nats or --config, not both");
  if (opts.config !== undefined) return connectBus(await loadConfig(opts.config), log, "fedgate-tool");
  if (opts.nats !== undefined) return JetStreamBus.connect({ servers: opts.nats, log });
  throw new PermanentError("FG_CONFIG_INVALID", "give --nats <url> or --config <file>: where the bus is");
}
