import { DemoFederation } from "../demo/demoFederation.js";
import { createLogger } from "../log.js";

/** Brings the demo up, prints how to try it, and tears it down on Ctrl-C. */
export async function demoCommand(dir?: string): Promise<void> {
  const log = createLogger("warn", "fedgate-demo");
  process.stdout.write("fedgate demo: starting nats-server, the bridges' servers and the gateway…\n");
  const demo = await DemoFederation.start(log, dir);
  const d = demo.description;
  const lines = [
    "",
    "fedgate demo federation is up (everything on 127.0.0.1).",
    `  description (JSON): ${demo.descriptionFile}`,
    `  NATS:               ${d.nats.url}`,
    `  admin API:          ${d.admin.url}   (bearer token in the JSON file)`,
    ...Object.entries(d.servers).map(([name, url]) => `  ${`${name}:`.padEnd(20)}${url}`),
    ...d.accounts.map(
      (a) =>
        `  account:            ${a.user} / ${a.password}${a.encryptionPassword === undefined ? "" : ` (encryption password ${a.encryptionPassword})`}  (${a.agency} on ${a.network}, ${a.server})`,
    ),
    ...d.links.map(
      (l) =>
        `  linked:             ${l.id}: ${l.endpoints.map((e) => `${e.network}/${e.instance}/${e.conversation}`).join("  <->  ")}`,
    ),
    "",
    "Try it from another terminal in this folder:",
    ...d.try.flatMap((t) => [`  # ${t.description}`, `  ${t.command}`]),
    "",
    "Ctrl-C stops everything the demo started.",
    "",
  ];
  process.stdout.write(lines.join("\n"));
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  process.stdout.write("\nfedgate demo: stopping…\n");
  await demo.stop();
}
