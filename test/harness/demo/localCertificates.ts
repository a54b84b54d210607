/**
 * A local CA (demo, tests) and certificates it issues, made with Debian's openssl: what two federated gateways present on
 * their leafnode. Each certificate's key is pinned by the SHA-256 of its SubjectPublicKeyInfo.
 */
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureDebianBinary } from "../servers/debianPackages.js";
import { runCommand } from "../servers/serverProcess.js";

export interface LocalCertificate {
  certFile: string;
  keyFile: string;
  /** SHA-256 of the certificate's SubjectPublicKeyInfo, lower-case hex: what a partner manifest pins. */
  pin: string;
}

async function openssl(args: string[]): Promise<void> {
  const { code, output } = await runCommand(await ensureDebianBinary("openssl", "openssl"), args);
  if (code !== 0) throw new Error(`openssl ${args[0] ?? ""} failed (${String(code)}):\n${output}`);
}

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** A CA in `dir`, and a way to issue certificates for 127.0.0.1 with it. */
export async function localCa(
  dir: string,
): Promise<{ caFile: string; issue(name: string): Promise<LocalCertificate> }> {
  const caFile = join(dir, "ca.pem");
  const caKey = join(dir, "ca.key");
  await openssl([
    "req",
    "-x509",
    ...ecKey,
    "-keyout",
    caKey,
    "-out",
    caFile,
    "-days",
    "30",
    "-subj",
    "/CN=fedgate local CA",
  ]);
  return {
    caFile,
    async issue(name) {
      const keyFile = join(dir, `${name}.key`);
      const csr = join(dir, `${name}.csr`);
      const certFile = join(dir, `${name}.pem`);
      const ext = join(dir, `${name}.ext`);
      await writeFile(
        ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
      );
      await openssl(["req", ...ecKey, "-keyout", keyFile, "-out", csr, "-subj", `/CN=${name}`]);
      await openssl([
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        caFile,
        "-CAkey",
        caKey,
        // A random serial of its own: a serial file (-CAcreateserial) is read and rewritten by every issue, and
        // two issued at once read it half-written ("Unable to load number from ca.srl").
        "-set_serial",
        `0x${randomBytes(16).toString("hex")}`,
        "-out",
        certFile,
        "-days",
        "30",
        "-extfile",
        ext,
      ]);
      const spki = new X509Certificate(await readFile(certFile)).publicKey.export({
        type: "spki",
        format: "der",
      });
      return { certFile, keyFile, pin: createHash("sha256").update(spki).digest("hex") };
    },
  };
}
