/**
 * TLS on the leafnode between two gateways, the accepting side pinning the key the connecting partner's
 * certificate carries (from its partner manifest): a certificate the same CA signed for another key is
 * refused. nats-server 2.9 checks pins only where it accepts a connection (see docs/federation.md).
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PartnerManifest } from "../../../schemas/types.js";
import { LocalNatsServer } from "../../harness/servers/LocalNatsServer.js";
import { freePort } from "../../harness/servers/serverProcess.js";
import {
  federationServerConfig,
  type LeafnodeTls,
} from "../../../gateway/core/federation/federationAccounts.js";
import { checkPartnerKey, presentedKey } from "../../../gateway/core/federation/leafnodeProbe.js";
import { FedgateError } from "../../../schemas/contract/errors.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { scratchDir } from "../../helpers/scratchDir.js";
import { localCa, type LocalCertificate } from "../../harness/demo/localCertificates.js";

const available = await startNatsOrSkip();
await available?.stop();

const core = { user: "core", password: randomBytes(12).toString("hex") };
const leaf = { user: "fr-leaf", password: randomBytes(12).toString("hex") };

describe.skipIf(available === undefined)("federation - TLS with pinned keys on the leafnode", () => {
  let caFile = "";
  const certs: Record<"de" | "fr" | "impostor", LocalCertificate | undefined> = {
    de: undefined,
    fr: undefined,
    impostor: undefined,
  };
  const running: LocalNatsServer[] = [];

  beforeAll(async () => {
    const ca = await localCa(await scratchDir("leaf-tls"));
    caFile = ca.caFile;
    certs.de = await ca.issue("de");
    certs.fr = await ca.issue("fr");
    // Signed by the same CA, so its chain is good: only the pinned key tells it apart.
    certs.impostor = await ca.issue("impostor");
  }, 60_000);

  afterAll(async () => {
    for (const server of running) await server.stop();
  });

  const tlsOf = (cert: LocalCertificate | undefined): LeafnodeTls => ({
    certFile: cert?.certFile ?? "",
    keyFile: cert?.keyFile ?? "",
    caFile,
  });

  /** Germany listens pinning `dePins` for France; France connects with `frCert`, pinning `frPins` for Germany. */
  async function crossesWith(
    frCert: LocalCertificate | undefined,
    dePins: string[],
    frPins: string[],
  ): Promise<boolean> {
    const leafPort = await freePort();
    const de = await LocalNatsServer.start({
      config: federationServerConfig({
        self: "de",
        gateway: core,
        partners: [{ id: "fr", accepts: leaf, pinnedKeys: dePins }],
        leafnodeListen: { host: "127.0.0.1", port: leafPort },
        tls: tlsOf(certs.de),
      }),
    });
    running.push(de);
    const fr = await LocalNatsServer.start({
      config: federationServerConfig({
        self: "fr",
        gateway: core,
        partners: [
          {
            id: "de",
            connects: { url: `nats-leaf://127.0.0.1:${String(leafPort)}`, ...leaf },
            pinnedKeys: frPins,
          },
        ],
        tls: tlsOf(frCert),
      }),
    });
    running.push(fr);
    const deCore = await connect({ servers: de.url, user: core.user, pass: core.password });
    const frCore = await connect({ servers: fr.url, user: core.user, pass: core.password });
    try {
      const heard = { any: false };
      const subscription = frCore.subscribe("fedgate.v1.federation.de.fr.>");
      void (async () => {
        for await (const _ of subscription) heard.any = true;
      })();
      await frCore.flush();
      // Long enough for a leafnode to come up on a loaded machine; a refused one never does.
      for (let i = 0; i < 40 && !heard.any; i++) {
        deCore.publish("fedgate.v1.federation.de.fr.probe", "");
        await deCore.flush();
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      return heard.any;
    } finally {
      await deCore.close();
      await frCore.close();
      await fr.stop();
      await de.stop();
    }
  }

  it("federation - with each side's key pinned, the leafnode comes up over TLS", async () => {
    expect(await crossesWith(certs.fr, [certs.fr?.pin ?? ""], [certs.de?.pin ?? ""])).toBe(true);
  }, 60_000);

  it("federation - a partner presenting a certificate for a key not pinned is refused, though its CA is trusted", async () => {
    expect(await crossesWith(certs.impostor, [certs.fr?.pin ?? ""], [certs.de?.pin ?? ""])).toBe(false);
  }, 60_000);

  it("federation - the connecting gateway probes the key a partner's leafnode presents against its manifest's pins", async () => {
    const leafPort = await freePort();
    const de = await LocalNatsServer.start({
      config: federationServerConfig({
        self: "de",
        gateway: core,
        partners: [{ id: "fr", accepts: leaf, pinnedKeys: [certs.fr?.pin ?? ""] }],
        leafnodeListen: { host: "127.0.0.1", port: leafPort },
        tls: tlsOf(certs.de),
      }),
    });
    running.push(de);
    const url = `nats-leaf://127.0.0.1:${String(leafPort)}`;
    const ca = await readFile(caFile, "utf8");
    expect(await presentedKey(url, { ca })).toBe(certs.de?.pin);
    const manifest = (pins: [string, ...string[]]): PartnerManifest => ({
      version: 1,
      gateway: { id: "de", country: "DE", name: "fedgate der Bundespolizei" },
      issuedAt: "2026-12-01T00:00:00Z",
      expiresAt: "2036-12-01T00:00:00Z",
      agencies: [{ id: "bpol", name: "Bundespolizei", country: "DE" }],
      endpoints: { leafnode: url },
      pins: { tlsPublicKeySha256: pins },
    });
    expect(await checkPartnerKey(manifest([certs.de?.pin ?? ""]), { ca })).toBe(certs.de?.pin);
    const refusal = await checkPartnerKey(manifest([certs.impostor?.pin ?? ""]), { ca }).catch(
      (error: unknown) => error,
    );
    expect(refusal instanceof FedgateError ? refusal.code : refusal).toBe("FG_PEER_REFUSED");
    await de.stop();
  }, 60_000);
});
