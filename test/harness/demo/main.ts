/**
 * The demo's command, run from the source checkout (`scripts/demo.sh`, `npm run demo`): brings the local demo
 * federation up, and writes and reads a Stashcat chat as a person would. Harness only; the image has none of it.
 */
import { Command } from "commander";
import { FedgateError } from "../../../schemas/contract/errors.js";
import { demoCommand } from "./demoCommand.js";
import { registerStashcatCommands } from "./stashcatCommands.js";

const program = new Command("fedgate-demo")
  .description("The fedgate demo federation on 127.0.0.1")
  .showHelpAfterError();

program
  .command("up", { isDefault: true })
  .description("bring up a local demo federation on 127.0.0.1 (Ctrl-C stops it)")
  .option("-d, --dir <dir>", "working folder (default: a new temporary folder)")
  .action((opts: { dir?: string }) => demoCommand(opts.dir));

registerStashcatCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.stderr.write(
    error instanceof FedgateError
      ? `fedgate-demo: ${error.code}: ${error.message}\n`
      : `fedgate-demo: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
}
