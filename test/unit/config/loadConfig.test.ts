import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../gateway/platform/config/loadConfig.js";
import { resolveSecret } from "../../../gateway/platform/config/secrets.js";
import { ConfigError } from "../../../schemas/contract/errors.js";
import { scratchDir } from "../../helpers/scratchDir.js";

async function configFile(text: string): Promise<string> {
  const file = join(await scratchDir("config"), "config.yaml");
  await writeFile(file, text);
  return file;
}

describe("config - loading and validation", () => {
  it("config - a wrong key is named with its pointer, its line and the file", async () => {
    const file = await configFile(
      "nats:\n  url: nats://127.0.0.1:4222\ngateway:\n  policyFile: p.yaml\n  ackWaitMS: 100\n",
    );
    const error = await loadConfig(file, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain(file);
    expect((error as ConfigError).pointer).toBe("/gateway");
    expect((error as ConfigError).message).toContain("ackWaitMS");
    expect((error as ConfigError).message).toContain("line 4");
    expect((error as ConfigError).code).toBe("FG_CONFIG_INVALID");
  });

  it("config - a wrong type is named at the key itself", async () => {
    const file = await configFile("nats:\n  url: nats://x\nadmin:\n  port: eighty\n  token: { env: T }\n");
    await expect(loadConfig(file, {})).rejects.toThrow(/\/admin\/port: must be integer \(line 4\)/);
  });

  it("config - broken YAML is reported with the file and line", async () => {
    const file = await configFile("nats:\n  url: [unclosed\n");
    await expect(loadConfig(file, {})).rejects.toThrow(new RegExp(`${file}.*line \\d`));
  });

  it("config - a missing file is FG_CONFIG_UNREADABLE", async () => {
    await expect(loadConfig("/nonexistent/fedgate.yaml", {})).rejects.toMatchObject({
      code: "FG_CONFIG_UNREADABLE",
    });
  });

  it("config - NATS_URL overrides the file", async () => {
    const file = await configFile("nats:\n  url: nats://from-file:4222\n");
    const { config } = await loadConfig(file, { NATS_URL: "nats://from-env:4222" });
    expect(config.nats.url).toBe("nats://from-env:4222");
  });

  it("config - secrets resolve from env and file, and a missing one names its key", async () => {
    const file = await configFile("nats:\n  url: nats://x\n");
    await writeFile(join(file, "..", "token.txt"), "s3cret\n");
    expect(await resolveSecret({ file: "token.txt" }, file, "/admin/token")).toBe("s3cret");
    expect(await resolveSecret({ env: "T" }, file, "/admin/token", { T: "abc" })).toBe("abc");
    await expect(resolveSecret({ env: "MISSING" }, file, "/admin/token", {})).rejects.toThrow(
      /\/admin\/token: environment variable MISSING is not set/,
    );
  });
});

describe("config - the policy's source", () => {
  it("config - a policy given both as a file and inline is refused in words", async () => {
    const file = await configFile(
      "nats: { url: nats://x }\ngateway:\n  policyFile: p.yaml\n  policy: { agencies: [{ id: a, country: DE, name: A, network: xmpp, instance: a }], routes: [] }\n",
    );
    await expect(loadConfig(file, {})).rejects.toThrow(
      /\/gateway: must have policyFile or policy, not both \(line 3\)/,
    );
  });
});
