import { stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../gateway/platform/config/loadConfig.js";
import { loadMatrixConfig, readStoreKey } from "../../../bridges/matrix/config.js";
import { generateRegistration } from "../../../bridges/matrix/registration.js";
import { writeMatrixRegistration } from "../../../bridges/matrix/runMatrixBridge.js";
import { scratchDir } from "../../helpers/scratchDir.js";

const section = {
  instance: "tchap",
  homeserverUrl: "http://127.0.0.1:8008",
  serverName: "tchap.localhost",
  registrationFile: "registration.yaml",
};

async function configWith(matrix: Record<string, unknown>, registration?: string) {
  const dir = await scratchDir("matrix-config");
  const file = join(dir, "config.yaml");
  await writeFile(file, stringify({ nats: { url: "nats://127.0.0.1:4222" }, bridges: { matrix } }));
  if (registration !== undefined) await writeFile(join(dir, "registration.yaml"), registration);
  return { loaded: await loadConfig(file, {}), dir, file };
}

const { yaml: registration } = generateRegistration({
  id: "fedgate-tchap",
  url: "http://127.0.0.1:9000",
  serverName: "tchap.localhost",
});

describe("Matrix bridge config", () => {
  it("Matrix config - reads the section and its registration, with defaults", async () => {
    const { loaded } = await configWith(section, registration);
    const { config, registration: read } = await loadMatrixConfig(loaded);
    expect(config).toMatchObject({ ...section, ghostPrefix: "fedgate_", maxBodyBytes: 65536 });
    expect(read.sender_localpart).toBe("fedgate");
  });

  it("Matrix config - a wrong key is named with the file and its place under /bridges/matrix", async () => {
    const { loaded, file } = await configWith({ ...section, homeserverUrl: "synapse:8008" }, registration);
    await expect(loadMatrixConfig(loaded)).rejects.toMatchObject({
      code: "FG_CONFIG_INVALID",
      message: expect.stringContaining(`${file}: /bridges/matrix/homeserverUrl`) as unknown,
    });
  });

  it("Matrix config - a missing or broken registration file is named, its tokens never shown", async () => {
    const missing = await configWith(section);
    await expect(loadMatrixConfig(missing.loaded)).rejects.toMatchObject({
      code: "FG_CONFIG_UNREADABLE",
      message: expect.stringContaining(join(missing.dir, "registration.yaml")) as unknown,
    });
    const noToken = registration.replace(/^hs_token:.*$/m, "");
    const broken = await configWith(section, noToken);
    const error = (await loadMatrixConfig(broken.loaded).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain("/hs_token: must be a non-empty string");
    expect(error.message).not.toContain(/^as_token: (.*)$/m.exec(registration)?.[1] ?? "none");
  });

  it("Matrix config - userServers and roomServers are lists of server names", async () => {
    const good = await configWith(
      { ...section, userServers: ["tchap.localhost", "[::1]:8448"], roomServers: ["rooms.localhost"] },
      registration,
    );
    expect((await loadMatrixConfig(good.loaded)).config).toMatchObject({
      userServers: ["tchap.localhost", "[::1]:8448"],
    });
    for (const servers of [[], ["tchap localhost"], ["@claire:tchap.localhost"]]) {
      const { loaded, file } = await configWith({ ...section, userServers: servers }, registration);
      await expect(loadMatrixConfig(loaded)).rejects.toMatchObject({
        message: expect.stringContaining(`${file}: /bridges/matrix/userServers`) as unknown,
      });
    }
  });

  it("Matrix config - ghosts outside the registration's namespace are refused at start-up", async () => {
    const { loaded, file } = await configWith({ ...section, ghostPrefix: "bridge_" }, registration);
    await expect(loadMatrixConfig(loaded)).rejects.toMatchObject({
      message: expect.stringContaining(`${file}: /bridges/matrix/ghostPrefix`) as unknown,
    });
  });

  it("Matrix config - encryption is off by default; on, it needs the registration's opt-ins", async () => {
    const plain = await configWith(section, registration.replace(/^io\.element\.msc4190: true$/m, ""));
    expect((await loadMatrixConfig(plain.loaded)).config.encryption).toEqual({
      enabled: false,
      deviceName: "fedgate bridge",
      maxDevices: 1000,
      onlyCrossSignedDevices: false,
    });
    const encrypted = { ...section, encryption: { enabled: true } };
    const good = await configWith(encrypted, registration);
    expect((await loadMatrixConfig(good.loaded)).config.encryption.enabled).toBe(true);
    const old = await configWith(encrypted, registration.replace(/^io\.element\.msc4190: true$/m, ""));
    await expect(loadMatrixConfig(old.loaded)).rejects.toMatchObject({
      code: "FG_CONFIG_INVALID",
      message: expect.stringContaining(
        `${join(old.dir, "registration.yaml")}: /io.element.msc4190`,
      ) as unknown,
    });
  });

  it("Matrix config - the crypto store needs its key file; paths are read from the config's folder", async () => {
    const both = await configWith(
      { ...section, encryption: { enabled: true, storeFile: "crypto.store", storeKeyFile: "store.key" } },
      registration,
    );
    expect((await loadMatrixConfig(both.loaded)).config.encryption).toMatchObject({
      storeFile: join(both.dir, "crypto.store"),
      storeKeyFile: join(both.dir, "store.key"),
    });
    const alone = await configWith({ ...section, encryption: { storeFile: "crypto.store" } }, registration);
    await expect(loadMatrixConfig(alone.loaded)).rejects.toMatchObject({
      message: expect.stringContaining(`${alone.file}: /bridges/matrix/encryption/storeKeyFile`) as unknown,
    });
    const short = join(both.dir, "short.key");
    await writeFile(short, "password\n");
    await expect(readStoreKey(short)).rejects.toMatchObject({
      message: expect.stringContaining("at least 32 characters") as unknown,
    });
    const secret = "k".repeat(40);
    await writeFile(join(both.dir, "store.key"), `${secret}\n`);
    const key = await readStoreKey(join(both.dir, "store.key"));
    expect(key).toHaveLength(32);
    expect(Buffer.from(key).toString("latin1")).not.toContain(secret);
  });

  it("Matrix config - --generate-registration writes a private file once and never overwrites it", async () => {
    const { loaded, dir } = await configWith(section);
    const written = await writeMatrixRegistration(loaded, "http://bridge.internal:9000");
    expect(written).toBe(join(dir, "registration.yaml"));
    expect((await stat(written)).mode & 0o777).toBe(0o600);
    const { registration: read } = await loadMatrixConfig(loaded);
    expect(read.url).toBe("http://bridge.internal:9000");
    await expect(writeMatrixRegistration(loaded)).rejects.toMatchObject({
      message: expect.stringContaining("exists already") as unknown,
    });
  });
});
