/**
 * `fedgate federation`: an issuing authority's key, and the partner manifests it signs, checks and shows.
 * Manifests are read as YAML or JSON; signed ones are written as JSON.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import type { PartnerManifest } from "../../schemas/types.js";
import { parseYaml, readText } from "../platform/config/loadConfig.js";
import { validatePartnerManifest } from "../../schemas/contract/schemas.js";
import { PermanentError } from "../../schemas/contract/errors.js";
import { federationAuthorities } from "../core/GatewayService.js";
import { loadConfig } from "../platform/config/loadConfig.js";
import { grantKeyText } from "../core/federation/consentGrant.js";
import { federationServerConfig } from "../core/federation/federationAccounts.js";
import { checkPartnerKey } from "../core/federation/leafnodeProbe.js";
import { serverOptionsOf } from "../core/federation/serverOptionsOf.js";
import {
  keyIdOf,
  privateKeyFrom,
  publicKeyFrom,
  signManifest,
  verifyManifest,
} from "../core/federation/partnerManifest.js";

async function readDocument(file: string): Promise<unknown> {
  return parseYaml(await readText(file), file).value;
}

async function authorityKeys(files: readonly string[]): Promise<KeyObject[]> {
  return Promise.all(files.map(async (file) => publicKeyFrom(await readText(file), file)));
}

/** Writes a file that must not replace another: a key overwritten is an identity lost. */
async function writeNew(file: string, text: string, mode: number): Promise<void> {
  try {
    await writeFile(file, text, { flag: "wx", mode });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? String(cause);
    throw new PermanentError("FG_KEY_INVALID", `cannot write ${file}: ${code}`, { cause });
  }
}

async function generateKey(opts: { out: string }): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  await writeNew(`${opts.out}.key`, privateKey.export({ type: "pkcs8", format: "pem" }).toString(), 0o600);
  await writeNew(`${opts.out}.pub`, publicKey.export({ type: "spki", format: "pem" }).toString(), 0o644);
  process.stdout.write(
    `wrote ${opts.out}.key (keep it offline) and ${opts.out}.pub (give it to partner gateways)\nkey id ${keyIdOf(publicKey)}\nas a manifest's grantKeys entry (when it signs a gateway's consent grants): ${grantKeyText(publicKey)}\n`,
  );
}

async function sign(opts: { manifest: string; key: string; out?: string }): Promise<void> {
  const key = privateKeyFrom(await readText(opts.key), opts.key);
  const signed = signManifest(await readDocument(opts.manifest), key);
  const text = `${JSON.stringify(signed, null, 2)}\n`;
  if (opts.out === undefined) process.stdout.write(text);
  else {
    await writeFile(opts.out, text);
    process.stderr.write(`signed ${opts.manifest} with key ${signed.signature.keyId} into ${opts.out}\n`);
  }
}

/** A manifest as people read it: who, until when, for whom, where, which certificate keys. */
function describe(manifest: PartnerManifest): string {
  const { gateway } = manifest;
  const lines = [
    `gateway ${gateway.id}: ${gateway.name} (${gateway.country}), version ${String(manifest.version)}`,
    `valid from ${manifest.issuedAt} to ${manifest.expiresAt}`,
    "agencies:",
    ...manifest.agencies.map(
      (a) =>
        `  ${a.id}: ${a.name} (${a.country}), may receive ${
          a.accreditation === undefined || a.accreditation.length === 0
            ? "unmarked messages only"
            : a.accreditation.join(", ")
        }`,
    ),
    `leafnode ${manifest.endpoints.leafnode}`,
    `certificate keys (SHA-256 of SubjectPublicKeyInfo): ${manifest.pins.tlsPublicKeySha256.join(", ")}`,
    `equivalences: ${(manifest.equivalences ?? []).map((pair) => pair.join(" = ")).join(", ") || "none"}`,
  ];
  return `${lines.join("\n")}\n`;
}

async function verify(opts: { manifest: string; authority: string[] }): Promise<void> {
  const document = await readDocument(opts.manifest);
  const manifest = verifyManifest(document, { authorities: await authorityKeys(opts.authority) });
  const keyId = (document as { signature: { keyId: string } }).signature.keyId;
  process.stdout.write(`valid: signed by key ${keyId}\n${describe(manifest)}`);
}

async function show(opts: { manifest: string; authority?: string[] }): Promise<void> {
  const document = await readDocument(opts.manifest);
  if (opts.authority !== undefined && opts.authority.length > 0) {
    await verify({ manifest: opts.manifest, authority: opts.authority });
    return;
  }
  // Unverified, it is shown as what it claims, and says so; still, only a manifest the schema takes.
  const claimed = validatePartnerManifest((document as { manifest?: unknown }).manifest ?? document);
  const signed = (document as { signature?: { keyId?: unknown } }).signature?.keyId;
  process.stdout.write(
    `NOT VERIFIED (give --authority to verify): ${typeof signed === "string" ? `signed by key ${signed}` : "unsigned"}\n${describe(claimed)}`,
  );
}

/** A partner's leafnode checked against its verified manifest: the key it presents must be one it pins. */
async function probe(opts: {
  manifest: string;
  authority: string[];
  url?: string;
  ca?: string;
}): Promise<void> {
  const manifest = verifyManifest(await readDocument(opts.manifest), {
    authorities: await authorityKeys(opts.authority),
  });
  const key = await checkPartnerKey(manifest, {
    ...(opts.url === undefined ? {} : { url: opts.url }),
    ...(opts.ca === undefined ? {} : { ca: await readText(opts.ca) }),
  });
  process.stdout.write(
    `ok: the leafnode of gateway ${manifest.gateway.id} at ${opts.url ?? manifest.endpoints.leafnode} presents pinned key ${key}\n`,
  );
}

/** The nats-server accounts and leafnodes of a federating gateway, from its config and partners' manifests. */
async function serverConfig(opts: { config: string; manifest?: string[]; out?: string }): Promise<void> {
  const loaded = await loadConfig(opts.config);
  const authorities = (await federationAuthorities(loaded)) ?? [];
  const manifests = await Promise.all(
    (opts.manifest ?? []).map(async (file) => verifyManifest(await readDocument(file), { authorities })),
  );
  const text = federationServerConfig(await serverOptionsOf(loaded, manifests));
  if (opts.out === undefined) process.stdout.write(text);
  else {
    await writeFile(opts.out, text, { mode: 0o600 });
    process.stderr.write(`wrote ${opts.out}: give it to nats-server with -c (it holds credentials)\n`);
  }
}

export function federationCommands(program: Command): void {
  const federation = program
    .command("federation")
    .description("partner gateways: authority keys and signed partner manifests");
  federation
    .command("key")
    .description("issuing authority keys")
    .command("generate")
    .description("write a new Ed25519 key pair: <out>.key (private, mode 0600) and <out>.pub")
    .requiredOption("--out <prefix>", "path and name of the key files, without extension")
    .action(generateKey);
  const manifest = federation.command("manifest").description("partner manifests");
  manifest
    .command("sign")
    .description("check a manifest (YAML or JSON) against the schema and sign it; prints the signed JSON")
    .requiredOption("--manifest <file>", "the manifest")
    .requiredOption("--key <file>", "the authority's private key (PEM)")
    .option("--out <file>", "write the signed manifest here instead of standard output")
    .action(sign);
  manifest
    .command("verify")
    .description("check a signed manifest's signature, schema and validity; exits 1 if it is refused")
    .requiredOption("--manifest <file>", "the signed manifest")
    .requiredOption("--authority <file...>", "the public keys (PEM) of the authorities trusted to sign it")
    .action(verify);
  federation
    .command("probe")
    .description("check that a partner's leafnode presents a key its verified manifest pins; exits 1 if not")
    .requiredOption("--manifest <file>", "the partner's signed manifest")
    .requiredOption("--authority <file...>", "the public keys (PEM) of the authorities trusted to sign it")
    .option("--url <url>", "where to reach the leafnode, if not the manifest's endpoint")
    .option("--ca <file>", "the CA (PEM) the partner's certificate must chain to")
    .action(probe);
  federation
    .command("server-config")
    .description(
      "write the nats-server config (accounts, JetStream domain, leafnodes, pinned keys) of a federating gateway",
    )
    .requiredOption("--config <file>", "the gateway's config (federation.gateway, .partners, .leafnode)")
    .option(
      "--manifest <file...>",
      "partners' signed manifests, verified with federation.authorities: the keys to pin",
    )
    .option("--out <file>", "write it here (mode 0600) instead of standard output")
    .action(serverConfig);
  manifest
    .command("show")
    .description("print what a manifest says, verified when authorities are given")
    .requiredOption("--manifest <file>", "the manifest, signed or not")
    .option("--authority <file...>", "the public keys (PEM) of the authorities trusted to sign it")
    .action(show);
}
