/**
 * Which key a partner's leafnode port presents, read the way a leafnode connects: NATS sends its INFO line in
 * the clear, then the connection turns to TLS. nats-server 2.9 checks pinned keys only on connections it
 * accepts, so the gateway that connects probes the partner's key against the manifest's pins itself, before
 * the leafnode is configured.
 */
import { createHash } from "node:crypto";
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import type { PartnerManifest } from "../../../schemas/types.js";
import { PermanentError, TransientError } from "../../../schemas/contract/errors.js";

/** The INFO line is short; anything longer before it is not a NATS server. */
const MAX_INFO_BYTES = 64 * 1024;

/** Reads the server's INFO line, in the clear. */
function readInfo(socket: Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => fail(new Error(`no INFO within ${String(timeoutMs)} ms`)), timeoutMs);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString("latin1");
      if (seen.includes("\r\n")) {
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("error", fail);
        if (!seen.startsWith("INFO ")) reject(new Error("the port does not speak NATS"));
        else resolve();
      } else if (seen.length > MAX_INFO_BYTES) fail(new Error("the port does not speak NATS"));
    };
    socket.on("data", onData);
    socket.once("error", fail);
  });
}

/**
 * The SHA-256 (hex) of the SubjectPublicKeyInfo the leafnode port at `url` presents. With `ca` (PEM), the
 * certificate must chain to it too. Unreachable: FG_PEER_UNAVAILABLE.
 */
export async function presentedKey(
  url: string,
  options: { ca?: string; timeoutMs?: number } = {},
): Promise<string> {
  const { hostname, port } = new URL(url);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const where = `${hostname}:${port}`;
  const socket = connectTcp({ host: hostname, port: Number(port) });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    await readInfo(socket, timeoutMs);
    const secure = connectTls({
      socket,
      servername: hostname,
      ...(options.ca === undefined ? { rejectUnauthorized: false } : { ca: options.ca }),
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no TLS handshake within ${String(timeoutMs)} ms`)),
        timeoutMs,
      );
      secure.once("secureConnect", () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once("error", (error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const certificate = secure.getPeerX509Certificate();
    secure.destroy();
    if (certificate === undefined) throw new Error("the port presented no certificate");
    const spki = certificate.publicKey.export({ type: "spki", format: "der" });
    return createHash("sha256").update(spki).digest("hex");
  } catch (cause) {
    throw new TransientError("FG_PEER_UNAVAILABLE", `cannot read the key the leafnode at ${where} presents`, {
      cause,
      detail: { url: where },
    });
  } finally {
    socket.destroy();
  }
}

/** Checks the key the partner's leafnode presents against its manifest's pins; resolves with that key. */
export async function checkPartnerKey(
  manifest: PartnerManifest,
  options: { url?: string; ca?: string; timeoutMs?: number } = {},
): Promise<string> {
  const url = options.url ?? manifest.endpoints.leafnode;
  const key = await presentedKey(url, options);
  if (!manifest.pins.tlsPublicKeySha256.includes(key))
    throw new PermanentError(
      "FG_PEER_REFUSED",
      `the leafnode of gateway ${manifest.gateway.id} at ${url} presents key ${key}, which its manifest does not pin`,
      { detail: { gateway: manifest.gateway.id, key } },
    );
  return key;
}
