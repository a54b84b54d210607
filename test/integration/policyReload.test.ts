/**
 * A running core follows its policy file: when Kubernetes updates the ConfigMap (a new timestamped folder, then
 * the `..data` symlink swapped to it), the next event is routed by the new policy, without a restart; a broken
 * policy is refused and the one in force kept, and the log says why.
 */
import { mkdir, readFile, rename, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../gateway/platform/log.js";
import { crossBorderLink, eventually, examplePolicyFile, message, xmppRoom } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { runFedgate, type FedgateProcess } from "../helpers/processes.js";
import { RecordingAdapter } from "../helpers/RecordingAdapter.js";
import { scratchDir } from "../helpers/scratchDir.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");

interface Policy {
  routes: { from: string; to: string }[];
}
const original = parse(await readFile(examplePolicyFile, "utf8")) as Policy;
// The same policy without the route from the federal police (XMPP) to the state police (Stashcat).
const narrowed: Policy = {
  ...original,
  routes: original.routes.filter((r) => !(r.from === "bpol" && r.to === "polizei-ni")),
};

/** A ConfigMap volume as the kubelet lays it out: files are symlinks through `..data` to a timestamped folder. */
class ConfigMapVolume {
  private version = 0;
  constructor(readonly dir: string) {}

  /** Writes a new version of the files and swaps `..data` to it in one rename, as the kubelet does. */
  async publish(files: Record<string, string>): Promise<void> {
    this.version += 1;
    const folder = `..2026_12_07_00_00_0${String(this.version)}.${String(process.pid)}`;
    await mkdir(join(this.dir, folder));
    for (const [name, text] of Object.entries(files)) await writeFile(join(this.dir, folder, name), text);
    await symlink(folder, join(this.dir, "..data_tmp"));
    await rename(join(this.dir, "..data_tmp"), join(this.dir, "..data"));
    if (this.version === 1)
      for (const name of Object.keys(files)) await symlink(join("..data", name), join(this.dir, name));
  }
}

describe.skipIf(nats === undefined)("policy reload - the core follows its policy file", () => {
  let gateway: FedgateProcess | undefined;
  let bus: JetStreamBus;
  let xmpp: RecordingAdapter;
  let stashcat: RecordingAdapter;
  let matrix: RecordingAdapter;
  let volume: ConfigMapVolume;

  /** Publishes from XMPP until an event reaches Matrix, and says whether Stashcat got it too. */
  const routedToStashcat = async (text: string): Promise<boolean> => {
    const event = message(xmppRoom, text);
    await xmpp.runtime.publish(event);
    await eventually(() => (matrix.of(event.id).length > 0 ? true : undefined), 10_000, `${text} to Matrix`);
    // Both deliveries come from one routing of the event; give Stashcat's a moment to be recorded.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return stashcat.of(event.id).length > 0;
  };

  beforeAll(async () => {
    if (nats === undefined) return;
    expect(narrowed.routes.length).toBe(original.routes.length - 1);
    expect(original.routes.some((r) => r.from === "bpol" && r.to === "dinum-mi")).toBe(true);
    volume = new ConfigMapVolume(await scratchDir("policy-reload"));
    await volume.publish({
      "config.yaml": stringify({
        nats: { url: nats.url },
        gateway: { policyFile: "policy.yaml", ackWaitMs: 2000 },
        log: { level: "info" },
        links: [crossBorderLink],
      }),
      "policy.yaml": stringify(original),
    });
    gateway = runFedgate(["gateway", "--config", join(volume.dir, "config.yaml")]);
    await gateway.waitFor("gateway started");
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    xmpp = await RecordingAdapter.open(bus, "xmpp", "bpol");
    stashcat = await RecordingAdapter.open(bus, "stashcat", "ni");
    matrix = await RecordingAdapter.open(bus, "matrix", "tchap");
  });

  afterAll(async () => {
    gateway?.child.kill("SIGKILL");
    if (nats === undefined) return;
    await Promise.all([xmpp.runtime.close(), stashcat.runtime.close(), matrix.runtime.close()]);
    await bus.close();
    await nats.stop();
  });

  it("policy reload - a ConfigMap update applies to the next event; a broken policy keeps the one in force", async () => {
    if (nats === undefined || gateway === undefined) return;
    expect(await routedToStashcat("vorher")).toBe(true);

    const config = await readFile(join(volume.dir, "config.yaml"), "utf8");
    await volume.publish({ "config.yaml": config, "policy.yaml": stringify(narrowed) });
    await gateway.waitFor("policy reloaded", 10_000);
    expect(await routedToStashcat("nachher")).toBe(false);
    expect(gateway.child.exitCode).toBeNull();

    // A route to an agency the policy does not declare: refused, and the log says where.
    const broken = { ...original, routes: [...original.routes, { from: "bpol", to: "nobody" }] };
    await volume.publish({ "config.yaml": config, "policy.yaml": stringify(broken) });
    await gateway.waitFor("keeping the old policy", 10_000);
    expect(gateway.output()).toMatch(/"code":"FG_POLICY_INVALID"/);
    expect(await routedToStashcat("kaputt")).toBe(false);
    // The original again: the route is back.
    await volume.publish({ "config.yaml": config, "policy.yaml": stringify(original) });
    await eventually(
      () => (gateway?.output().split("policy reloaded").length === 3 ? true : undefined),
      10_000,
      "the second reload",
    );
    expect(await routedToStashcat("wieder")).toBe(true);
  });
});
