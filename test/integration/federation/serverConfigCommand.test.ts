/**
 * `fedgate federation server-config`: a gateway's nats-server settings from its own config and its partners'
 * signed manifests. Two servers given what it writes are joined by a TLS leafnode, pinning the keys the
 * manifests give; a config that names a partner twice, or not at all, is refused naming the key.
 */
import type { ConfigInput } from "../../harness/configInput.js";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { Config } from "../../../schemas/types.js";
import { localCa } from "../../harness/demo/localCertificates.js";
import type { LocalNatsServer } from "../../harness/servers/LocalNatsServer.js";
import { freePort } from "../../harness/servers/serverProcess.js";
import { signManifest } from "../../../gateway/core/federation/partnerManifest.js";
import { startNatsOrSkip, untilCarried } from "../../helpers/nats.js";
import { runFedgate } from "../../helpers/processes.js";
import { scratchDir } from "../../helpers/scratchDir.js";

const available = await startNatsOrSkip();
await available?.stop();

async function fedgate(...args: string[]): Promise<{ code: number | null; output: string }> {
  const run = runFedgate(args);
  const code = await run.exited;
  return { code, output: run.output() };
}

describe.skipIf(available === undefined)("fedgate federation server-config", () => {
  const running: LocalNatsServer[] = [];
  const opened: NatsConnection[] = [];

  afterAll(async () => {
    for (const nc of opened) await nc.close();
    for (const server of running) await server.stop();
  });

  it("fedgate federation server-config - what it writes for two gateways joins them by a pinned TLS leafnode", async () => {
    const dir = await scratchDir("server-config");
    const ca = await localCa(dir);
    const certs = { de: await ca.issue("de"), fr: await ca.issue("fr") };
    const authorities = { de: generateKeyPairSync("ed25519"), fr: generateKeyPairSync("ed25519") };
    const leafPort = await freePort();
    const leafPassword = randomBytes(12).toString("hex");
    const corePassword = randomBytes(12).toString("hex");
    const files: Record<"de" | "fr", { config: string; manifest: string }> = {
      de: { config: join(dir, "de.yaml"), manifest: join(dir, "manifest-de.json") },
      fr: { config: join(dir, "fr.yaml"), manifest: join(dir, "manifest-fr.json") },
    };
    for (const [self, partner] of [
      ["de", "fr"],
      ["fr", "de"],
    ] as const) {
      const now = Date.now();
      const signed = signManifest(
        {
          version: 1,
          gateway: { id: self, country: self.toUpperCase(), name: `Gateway ${self}` },
          issuedAt: new Date(now - 60_000).toISOString(),
          expiresAt: new Date(now + 86_400_000).toISOString(),
          agencies: [{ id: `${self}-agency`, name: "Agency", country: self.toUpperCase() }],
          endpoints: { leafnode: `nats-leaf://127.0.0.1:${String(leafPort)}` },
          pins: { tlsPublicKeySha256: [certs[self].pin] },
        },
        authorities[self].privateKey,
      );
      await writeFile(files[self].manifest, JSON.stringify(signed));
      const authorityFile = join(dir, `authority-${partner}.pub`);
      await writeFile(authorityFile, authorities[partner].publicKey.export({ type: "spki", format: "pem" }));
      const leafnode =
        self === "de"
          ? {
              listen: `127.0.0.1:${String(leafPort)}`,
              accept: { fr: { user: "fr-leaf", password: { env: "LEAF_PASSWORD" } } },
            }
          : {
              connect: {
                de: {
                  url: `nats-leaf://127.0.0.1:${String(leafPort)}`,
                  user: "fr-leaf",
                  password: { env: "LEAF_PASSWORD" },
                },
              },
            };
      const config: ConfigInput<Config> = {
        nats: { url: "nats://127.0.0.1:4222", user: "core", password: { env: "CORE_PASSWORD" } },
        federation: {
          authorities: [{ file: authorityFile }],
          gateway: self,
          signingKey: { value: "unused here" },
          partners: [partner],
          leafnode: {
            ...leafnode,
            tls: { certFile: certs[self].certFile, keyFile: certs[self].keyFile, caFile: ca.caFile },
          },
        },
      };
      await writeFile(files[self].config, stringify(config));
    }

    const env = { LEAF_PASSWORD: leafPassword, CORE_PASSWORD: corePassword };
    const written: Record<string, string> = {};
    for (const [self, partner] of [
      ["de", "fr"],
      ["fr", "de"],
    ] as const) {
      const out = join(dir, `nats-${self}.conf`);
      const run = runFedgate(
        [
          "federation",
          "server-config",
          "--config",
          files[self].config,
          "--manifest",
          files[partner].manifest,
          "--out",
          out,
        ],
        env,
      );
      expect(await run.exited, run.output()).toBe(0);
      written[self] = await readFile(out, "utf8");
    }
    // The partner's key, from its manifest, is what the server pins; the secrets came from the environment.
    expect(JSON.parse(written["de"] ?? "")).toMatchObject({
      jetstream: { domain: "de" },
      leafnodes: { tls: { pinned_certs: [certs.fr.pin], verify: true } },
    });
    expect(written["fr"]).toContain(leafPassword);

    for (const self of ["de", "fr"] as const) {
      const server = await startNatsOrSkip({ config: written[self] ?? "" });
      if (server === undefined) throw new Error("nats-server did not start");
      running.push(server);
      opened.push(await connect({ servers: server.url, user: "core", pass: corePassword }));
    }
    const [deCore, frCore] = opened as [NatsConnection, NatsConnection];
    await untilCarried(deCore, frCore, "fedgate.v1.federation.de.fr.probe");
  }, 90_000);

  it("fedgate federation server-config - a partner the leafnode section names twice, or not at all, is refused by key", async () => {
    const dir = await scratchDir("server-config-bad");
    const authority = join(dir, "authority.pub");
    await writeFile(
      authority,
      generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }),
    );
    const write = async (leafnode: Record<string, unknown>): Promise<string> => {
      const file = join(dir, `${randomBytes(4).toString("hex")}.yaml`);
      await writeFile(
        file,
        stringify({
          nats: { url: "nats://127.0.0.1:4222", user: "core", password: { value: "x" } },
          federation: {
            authorities: [{ file: authority }],
            gateway: "de",
            signingKey: { value: "x" },
            partners: ["fr"],
            leafnode,
          },
        }),
      );
      return file;
    };
    const credentials = { user: "leaf", password: { value: "x" } };
    const twice = await fedgate(
      "federation",
      "server-config",
      "--config",
      await write({
        accept: { fr: credentials },
        connect: { fr: { url: "nats-leaf://gw.fr:7422", ...credentials } },
      }),
    );
    expect(twice.code).toBe(1);
    expect(twice.output).toContain("FG_CONFIG_INVALID");
    expect(twice.output).toContain("/federation/partners/0");
    const stranger = await fedgate(
      "federation",
      "server-config",
      "--config",
      await write({ accept: { fr: credentials, nl: credentials } }),
    );
    expect(stranger.code).toBe(1);
    expect(stranger.output).toContain("names nl, which is not in federation.partners");
  }, 60_000);
});
