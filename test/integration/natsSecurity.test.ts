/**
 * fedgate against a nats-server that speaks only TLS and knows its users by nkey or password: the core and a
 * bridge's runtime connect with the config's CA and credentials and an event is routed; a wrong CA or a wrong
 * credential fails at once with a typed error naming the config key, not as an endless reconnect.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { nkeys } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { GatewayService } from "../../gateway/core/GatewayService.js";
import type { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { connectBus } from "../../gateway/platform/bus/connectBus.js";
import { loadConfig } from "../../gateway/platform/config/loadConfig.js";
import { createLogger } from "../../gateway/platform/log.js";
import type { Config } from "../../schemas/types.js";
import { ConfigError } from "../../schemas/contract/errors.js";
import type { ConfigInput } from "../harness/configInput.js";
import { localCa } from "../harness/demo/localCertificates.js";
import { eventually, message, stashcatChannel, writeGatewayConfig, xmppRoom } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { RecordingAdapter } from "../helpers/RecordingAdapter.js";
import { runFedgate } from "../helpers/processes.js";
import { scratchDir } from "../helpers/scratchDir.js";

const log = createLogger("silent");
const certificates = await scratchDir("nats-tls");
const ca = await localCa(certificates);
const serverCertificate = await ca.issue("nats");
const clientCertificate = await ca.issue("fedgate");
const user = nkeys.createUser();
const nats = await startNatsOrSkip({
  config: [
    "tls {",
    `  cert_file: "${serverCertificate.certFile}"`,
    `  key_file: "${serverCertificate.keyFile}"`,
    // Clients must present a certificate of the same CA.
    `  ca_file: "${ca.caFile}"`,
    "  verify: true",
    "}",
    "authorization {",
    `  users = [ { nkey: ${user.getPublicKey()} }, { user: fedgate, password: "right-password" } ]`,
    "}",
  ].join("\n"),
});

/** The gateway's test config with `nats` replaced, and a client certificate unless `nats.tls` says otherwise. */
function configWith(nats: NonNullable<ConfigInput<Config>["nats"]>): Promise<string> {
  const tls = { certFile: clientCertificate.certFile, keyFile: clientCertificate.keyFile, ...nats.tls };
  return writeGatewayConfig(nats.url ?? "", { nats: { ...nats, tls } });
}

describe.skipIf(nats === undefined)("NATS with TLS and credentials", () => {
  let seedFile = "";
  let gateway: GatewayService | undefined;
  let bus: JetStreamBus | undefined;

  beforeAll(async () => {
    seedFile = join(certificates, "user.nk");
    await writeFile(seedFile, Buffer.from(user.getSeed()).toString("utf8"), { mode: 0o600 });
  });

  afterAll(async () => {
    await bus?.close();
    await gateway?.stop();
    await nats?.stop();
  });

  it("nats - with the config's CA, a client certificate and an nkey seed the core connects and routes; a bridge's runtime with user and password too", async () => {
    if (nats === undefined) return;
    const core = await loadConfig(
      await configWith({ url: nats.url, tls: { caFile: ca.caFile }, nkeySeed: { file: seedFile } }),
      {},
    );
    gateway = await GatewayService.start(core, log);
    const bridge = await loadConfig(
      await configWith({
        url: nats.url,
        tls: { caFile: ca.caFile },
        user: "fedgate",
        password: { value: "right-password" },
      }),
      {},
    );
    bus = await connectBus(bridge, log, "test-bridges");
    const xmpp = await RecordingAdapter.open(bus, "xmpp", "bpol");
    const stashcat = await RecordingAdapter.open(bus, "stashcat", "ni");
    try {
      const event = message(xmppRoom, "über TLS");
      await xmpp.runtime.publish(event);
      const [delivery] = await eventually(
        () => (stashcat.of(event.id).length > 0 ? stashcat.of(event.id) : undefined),
        10_000,
        "the delivery to Stashcat",
      );
      expect(delivery?.delivery.target).toEqual({ ...stashcatChannel, kind: "room" });
    } finally {
      await Promise.all([xmpp.runtime.close(), stashcat.runtime.close()]);
    }
  });

  it("nats - the operator tools reach it with --config (its TLS and login); with --nats alone they are refused", async () => {
    if (nats === undefined) return;
    const config = await configWith({
      url: nats.url,
      tls: { caFile: ca.caFile },
      nkeySeed: { file: seedFile },
    });
    const verified = runFedgate(["audit", "verify", "--config", config]);
    expect(await verified.exited, verified.output()).toBe(0);
    expect(verified.output()).toContain("audit trail intact");
    const bare = runFedgate(["audit", "verify", "--nats", nats.url]);
    expect(await bare.exited).toBe(1);
    const both = runFedgate(["events", "tail", "audit", "--nats", nats.url, "--config", config]);
    expect(await both.exited).toBe(1);
    expect(both.output()).toContain("FG_CONFIG_INVALID: give --nats or --config, not both");
  }, 60_000);

  it("nats - a CA that did not issue the server's certificate fails with FG_BUS_TLS_REJECTED naming nats.tls.caFile", async () => {
    if (nats === undefined) return;
    const other = await localCa(await scratchDir("nats-tls-other"));
    const loaded = await loadConfig(
      await configWith({ url: nats.url, tls: { caFile: other.caFile }, nkeySeed: { file: seedFile } }),
      {},
    );
    const failure = connectBus(loaded, log, "test-wrong-ca");
    await expect(failure).rejects.toBeInstanceOf(ConfigError);
    await expect(failure).rejects.toMatchObject({
      code: "FG_BUS_TLS_REJECTED",
      pointer: "/nats/tls/caFile",
      transient: false,
    });
    await expect(failure).rejects.toThrow(
      /\/nats\/tls\/caFile: the TLS certificate of NATS at .* does not verify/,
    );
  });

  it("nats - a wrong password or another user's nkey fails with FG_BUS_AUTH_REJECTED naming the key, and no secret", async () => {
    if (nats === undefined) return;
    const wrongPassword = await loadConfig(
      await configWith({
        url: nats.url,
        tls: { caFile: ca.caFile },
        user: "fedgate",
        password: { value: "wrong-password" },
      }),
      {},
    );
    const refused = connectBus(wrongPassword, log, "test-wrong-password");
    await expect(refused).rejects.toMatchObject({
      code: "FG_BUS_AUTH_REJECTED",
      pointer: "/nats/password",
      transient: false,
    });
    await expect(refused).rejects.not.toThrow(/wrong-password/);

    const strangerSeed = join(await scratchDir("nats-tls-stranger"), "stranger.nk");
    await writeFile(strangerSeed, Buffer.from(nkeys.createUser().getSeed()).toString("utf8"));
    const stranger = await loadConfig(
      await configWith({ url: nats.url, tls: { caFile: ca.caFile }, nkeySeed: { file: strangerSeed } }),
      {},
    );
    await expect(connectBus(stranger, log, "test-stranger")).rejects.toMatchObject({
      code: "FG_BUS_AUTH_REJECTED",
      pointer: "/nats/nkeySeed",
    });
  });

  it("nats - the config refuses two logins at once, and a client certificate without its key", async () => {
    const file = join(await scratchDir("nats-tls-config"), "config.yaml");
    await writeFile(
      file,
      stringify({
        nats: { url: "nats://127.0.0.1:4222", token: { value: "t" }, nkeySeed: { file: "x.nk" } },
      }),
    );
    await expect(loadConfig(file, {})).rejects.toMatchObject({ code: "FG_CONFIG_INVALID" });
    await writeFile(file, stringify({ nats: { url: "nats://127.0.0.1:4222", tls: { certFile: "c.pem" } } }));
    await expect(loadConfig(file, {})).rejects.toThrow(/keyFile/);
  });
});
