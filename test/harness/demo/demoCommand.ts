import { DemoFederation } from "./demoFederation.js";
import { createLogger } from "../../../gateway/platform/log.js";

/** Brings the demo up, prints how to try it, and tears it down on Ctrl-C. */
export async function demoCommand(dir?: string): Promise<void> {
  const log = createLogger("warn", "fedgate-demo");
  process.stdout.write(
    "fedgate demo: starting two gateways (Germany's and France's), the bridges' servers and the bridges…\n",
  );
  const demo = await DemoFederation.start(log, dir);
  const d = demo.description;
  const lines = [
    "",
    "fedgate demo federation is up: two gateways, each with its own NATS, policy and audit (everything on 127.0.0.1).",
    `  description (JSON): ${demo.descriptionFile}`,
    ...d.gateways.flatMap((g) => [
      `  gateway ${g.id} (${g.country}):`,
      `    NATS:             ${g.nats.url}`,
      `    admin API:        ${g.admin.url}   (bearer token in the JSON file)`,
      `    console:          ${g.console.url}   (log in as ${g.console.agency}'s admin with token ${g.console.token})`,
      `    policy:           ${g.policyFile}`,
      `    bridges:          ${g.networks.join(", ")}`,
      ...g.links.map(
        (l) =>
          `    linked:           ${l.id}: ${l.endpoints.map((e) => `${e.network}/${e.instance}/${e.conversation}`).join("  <->  ")}`,
      ),
    ]),
    `  leafnode:           ${d.leafnode.url} (TLS, keys pinned from the signed manifests)`,
    `  shared:             ${d.shared.conversation}, consent ${Object.entries(d.shared.consent)
      .map(([gateway, state]) => `${state} at ${gateway}`)
      .join(", ")}`,
    ...Object.entries(d.servers).map(([name, url]) => `  ${`${name}:`.padEnd(20)}${url}`),
    ...d.accounts.map(
      (a) =>
        `  account:            ${a.user} / ${a.password}${a.encryptionPassword === undefined ? "" : ` (encryption password ${a.encryptionPassword})`}  (${a.agency} on ${a.network}, ${a.server})`,
    ),
    "",
    "Try it from another terminal in this folder:",
    ...d.try.flatMap((t) => [`  # ${t.description}`, `  ${t.command}`]),
    "",
    "Ctrl-C stops everything the demo started.",
    "",
  ];
  process.stdout.write(lines.join("\n"));
  // Listening until everything is stopped: a terminal's Ctrl-C can reach the process twice (directly, and
  // relayed by the launcher), and the second must not cut the orderly stop short.
  let stopRequested: () => void = () => undefined;
  const requested = new Promise<void>((resolve) => (stopRequested = resolve));
  const onSignal = (): void => stopRequested();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  await requested;
  process.stdout.write("\nfedgate demo: stopping…\n");
  try {
    await demo.stop();
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
