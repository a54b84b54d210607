/**
 * The image as the Dockerfile builds it, without Docker: its file layout is built step by step (npm ci,
 * build, prune, the final stage's copies) and the commands the chart runs are run from it.
 */
import { spawn } from "node:child_process";
import { copyFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { buildImageLayout, type ImageLayout } from "../harness/image/imageLayout.js";
import { LocalNatsServer } from "../harness/servers/LocalNatsServer.js";
import { examplePolicyFile } from "../helpers/fixtures.js";
import { repoRoot } from "../helpers/processes.js";
import { scratchDir } from "../helpers/scratchDir.js";

let image: ImageLayout;
let dir: string;
let nats: LocalNatsServer;

/** Runs the image's ENTRYPOINT with args, as the container would, in its WORKDIR with its ENV. */
function fedgate(args: string[], until?: string): Promise<{ code: number | null; output: string }> {
  const [command = "", ...entryArgs] = image.entrypoint;
  const child = spawn(command, [...entryArgs, ...args], {
    cwd: image.workdir,
    env: { PATH: process.env["PATH"] ?? "", ...image.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let stopping = false;
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    // One SIGTERM, as Kubernetes sends it; a second would end the process before it has stopped.
    if (until !== undefined && !stopping && output.includes(until)) {
      stopping = true;
      child.kill("SIGTERM");
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    }),
  );
}

describe("image - the layout the Dockerfile builds runs what the chart runs", () => {
  beforeAll(async () => {
    dir = await scratchDir("image");
    image = await buildImageLayout(join(repoRoot, "Dockerfile"), join(dir, "layers"));
    nats = await LocalNatsServer.start();
  }, 600_000);

  afterAll(async () => {
    await nats.stop();
  });

  it("image - the built layout holds no TypeScript sources and no test harness", async () => {
    const files = await readdir(image.workdir, { recursive: true });
    const shipped = files.filter((f) => !f.startsWith("node_modules"));
    expect(shipped).toContain(join("dist", "gateway", "cli", "main.js"));
    expect(shipped.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    expect(shipped.filter((f) => f.startsWith("test") || f.includes(join("dist", "test")))).toEqual([]);
    expect(files.some((f) => f.startsWith(join("node_modules", "multer")))).toBe(false);
  });

  it("image - fedgate --help lists the commands and every bridge", async () => {
    const { code, output } = await fedgate(["--help"]);
    expect(output).toContain("gateway");
    expect(code).toBe(0);
    const bridge = await fedgate(["bridge", "--help"]);
    expect(bridge.output).toMatch(/matrix, xmpp, stashcat/);
  });

  it("image - fedgate config check validates every bridge's section against the schema the bridge ships", async () => {
    const policy = join(dir, "policy.yaml");
    await copyFile(examplePolicyFile, policy);
    const config = {
      nats: { url: nats.url },
      gateway: { policyFile: policy },
      bridges: {
        xmpp: {
          instance: "bpol",
          service: "xmpp://127.0.0.1:5347",
          domain: "fedgate.bpol.localhost",
          secret: { env: "XMPP_COMPONENT_SECRET" },
          userDomains: ["bpol.localhost"],
          mucDomains: ["conference.bpol.localhost"],
        },
        matrix: {
          instance: "tchap",
          homeserverUrl: "http://127.0.0.1:8008",
          serverName: "tchap.localhost",
          registrationFile: "registration.yaml",
        },
        stashcat: {
          instance: "ni",
          apiUrl: "http://127.0.0.1:9100/",
          pushUrl: "http://127.0.0.1:9101/",
          email: "bridge@polizei.niedersachsen.de",
          password: { env: "STASHCAT_PASSWORD" },
        },
      },
    };
    const good = join(dir, "config.yaml");
    await writeFile(good, stringify(config));
    const checked = await fedgate(["config", "check", "--config", good]);
    expect(checked.output).toContain("bridges.xmpp: OK");
    expect(checked.output).toContain("bridges.matrix: OK");
    expect(checked.output).toContain("bridges.stashcat: OK");
    expect(checked.code).toBe(0);

    const bad = join(dir, "bad.yaml");
    await writeFile(
      bad,
      stringify({ ...config, bridges: { ...config.bridges, stashcat: { instance: "ni" } } }),
    );
    const refused = await fedgate(["config", "check", "--config", bad]);
    expect(refused.output).toMatch(/FG_CONFIG_INVALID: .*bad\.yaml.*\/bridges\/stashcat/);
    expect(refused.code).toBe(1);
  });

  it("image - fedgate gateway starts against a nats-server and stops on SIGTERM", async () => {
    const file = join(dir, "gateway.yaml");
    const policy = join(dir, "gateway-policy.yaml");
    await copyFile(examplePolicyFile, policy);
    await writeFile(file, stringify({ nats: { url: nats.url }, gateway: { policyFile: policy } }));
    const { code, output } = await fedgate(["gateway", "--config", file], "gateway started");
    expect(output).toContain("gateway started");
    expect(code).toBe(0);
  });
});
