import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { StashcatServer } from "../harness/servers/stashcat/StashcatServer.js";
import { examplePolicyFile } from "../helpers/fixtures.js";
import { runDemo, runFedgate } from "../helpers/processes.js";
import { scratchDir } from "../helpers/scratchDir.js";

async function configFile(text: string): Promise<string> {
  const file = join(await scratchDir("cli"), "config.yaml");
  await writeFile(file, text);
  return file;
}

async function run(
  args: string[],
  start: typeof runFedgate = runFedgate,
): Promise<{ code: number | null; output: string }> {
  const process = start(args);
  const code = await process.exited;
  return { code, output: process.output() };
}

describe("cli - fedgate config check", () => {
  it("cli - a good config is summarised and exits 0", async () => {
    const file = await configFile(
      `nats:\n  url: nats://127.0.0.1:4222\ngateway:\n  policyFile: ${examplePolicyFile}\n`,
    );
    const { code, output } = await run(["config", "check", "--config", file]);
    expect(output).toContain("OK");
    expect(output).toContain("4 agencies");
    expect(code).toBe(0);
  });

  it("cli - a wrong key is named with the file, and the exit code is 1", async () => {
    const file = await configFile("nats:\n  url: nats://127.0.0.1:4222\n  urll: typo\n");
    const { code, output } = await run(["config", "check", "--config", file]);
    expect(output).toContain("FG_CONFIG_INVALID");
    expect(output).toContain(file);
    expect(output).toContain('/nats: must NOT have additional properties "urll"');
    expect(code).toBe(1);
  });

  it("cli - a policy written inside the config is checked, with pointers into the config", async () => {
    const file = await configFile(
      [
        "nats: { url: nats://127.0.0.1:4222 }",
        "gateway:",
        "  policy:",
        "    agencies: [{ id: a, country: DE, name: A, network: xmpp, instance: a }]",
        "    routes: [{ from: a, to: nobody }]",
      ].join("\n"),
    );
    const { code, output } = await run(["config", "check", "--config", file]);
    expect(output).toContain("FG_POLICY_INVALID");
    expect(output).toContain("/gateway/policy/routes/0/to");
    expect(code).toBe(1);
  });

  it("cli - a declared link naming an undeclared agency is refused before anything starts", async () => {
    const file = await configFile(
      [
        "nats: { url: nats://127.0.0.1:4222 }",
        `gateway: { policyFile: ${examplePolicyFile} }`,
        "links:",
        "  - id: l1",
        "    endpoints:",
        "      - { network: xmpp, instance: bpol, conversation: r@muc, agency: bpol }",
        "      - { network: matrix, instance: tchap, conversation: '!r:t', agency: dgsi }",
      ].join("\n"),
    );
    const { code, output } = await run(["config", "check", "--config", file]);
    expect(output).toContain("/links/0/endpoints/1/agency: agency dgsi is not declared in the policy");
    expect(code).toBe(1);
  });

  it("cli - a bridge that is not part of the build says so instead of starting", async () => {
    const file = await configFile("nats: { url: nats://127.0.0.1:4222 }\n");
    const { code, output } = await run(["bridge", "signal", "--config", file]);
    expect(output).toContain("FG_BRIDGE_UNAVAILABLE");
    expect(code).toBe(1);
  });
});

describe("cli - fedgate bridge matrix --generate-registration", () => {
  it("cli - writes the registration the config names, and says where it goes", async () => {
    const file = await configFile(
      [
        "nats: { url: nats://127.0.0.1:4222 }",
        "bridges:",
        "  matrix:",
        "    instance: tchap",
        "    homeserverUrl: http://127.0.0.1:8008",
        "    serverName: tchap.example",
        "    registrationFile: registration.yaml",
      ].join("\n"),
    );
    const args = [
      "bridge",
      "matrix",
      "--config",
      file,
      "--generate-registration",
      "--url",
      "http://bridge:9000",
    ];
    const first = await run(args);
    expect(first.output).toContain(`wrote ${join(file, "..", "registration.yaml")}`);
    expect(first.output).toContain("app_service_config_files");
    expect(first.code).toBe(0);
    const written = await readFile(join(file, "..", "registration.yaml"), "utf8");
    expect(written).toContain("url: http://bridge:9000");
    const namespace = (parse(written) as { namespaces: { users: { regex: string }[] } }).namespaces.users[0];
    expect(namespace?.regex).toBe("@fedgate_.*:tchap\\.example$");
    const again = await run(args);
    expect(again.output).toContain("exists already");
    expect(again.code).toBe(1);
  });
});

function runDemoCommand(args: string[]): Promise<{ code: number | null; output: string }> {
  return run(args, runDemo);
}

describe("cli - the demo's stashcat send and read", () => {
  it("cli - an officer's message goes in encrypted and reads back decrypted", async () => {
    const server = await StashcatServer.start();
    try {
      const meyer = server.seed.users.find((u) => u.id === 4711);
      if (meyer === undefined) throw new Error("no seed officer");
      const login = ["--api", server.apiUrl, "--email", meyer.email, "--password", meyer.password];
      const withKey = [...login, "--encryption-password", meyer.encryptionPassword, "--channel", "1001"];
      const sent = await runDemoCommand(["stashcat", "send", ...withKey, "--text", "Lage in Hannover ruhig"]);
      expect(sent.output).toMatch(/sent message \d+ to channel 1001/);
      expect(sent.code).toBe(0);
      const read = await runDemoCommand(["stashcat", "read", ...withKey]);
      expect(read.output).toContain("Lage in Hannover ruhig");
      expect(read.code).toBe(0);
      // The wrong encryption password opens nothing, and says so.
      const refused = await runDemoCommand([
        "stashcat",
        "read",
        ...login,
        "--encryption-password",
        "falsch",
        "--channel",
        "1001",
      ]);
      expect(refused.output).toContain("FG_DECRYPTION_FAILED");
      expect(refused.code).toBe(1);
    } finally {
      await server.stop();
    }
  });
});
