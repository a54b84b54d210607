import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decryptAttachment,
  encryptAttachment,
  encryptedFile,
  readEncryptedFile,
} from "../../../bridges/matrix/crypto/encryptedAttachment.js";

/** NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt: key, initial counter block, plaintext, ciphertext. */
const nist = {
  key: Buffer.from("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "hex"),
  iv: Buffer.from("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", "hex"),
  plaintext: Buffer.from(
    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51" +
      "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710",
    "hex",
  ),
  ciphertext: Buffer.from(
    "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5" +
      "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6",
    "hex",
  ),
};

/** The `file` object a client writes for the NIST vector, written out by hand as the spec shows one. */
function nistFile(): Record<string, unknown> {
  return {
    url: "mxc://tchap.localhost/nistvector",
    key: {
      kty: "oct",
      key_ops: ["encrypt", "decrypt"],
      alg: "A256CTR",
      k: "YD3rEBXKcb4rc67whX13gR81LAc7YQjXLZgQowkU3_Q",
      ext: true,
    },
    iv: "8PHy8/T19vf4+fr7/P3+/w",
    hashes: { sha256: createHash("sha256").update(nist.ciphertext).digest("base64").replace(/=+$/, "") },
    v: "v2",
  };
}

function refusal(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("encrypted Matrix attachments", () => {
  it("decrypts the NIST AES-256-CTR vector from a file object written as a client writes it", () => {
    const { url, keys } = readEncryptedFile(nistFile());
    expect(url).toBe("mxc://tchap.localhost/nistvector");
    expect(keys.key.equals(nist.key)).toBe(true);
    expect(keys.iv.equals(nist.iv)).toBe(true);
    expect(decryptAttachment(nist.ciphertext, keys).equals(nist.plaintext)).toBe(true);
  });

  it("encrypts with a fresh key and a counter whose low 64 bits are zero, and reads back what it writes", () => {
    const plaintext = Buffer.from("Lagebild 14 Uhr\n".repeat(300));
    const first = encryptAttachment(plaintext);
    const second = encryptAttachment(plaintext);
    expect(first.keys.key.equals(second.keys.key)).toBe(false);
    expect(first.ciphertext.equals(second.ciphertext)).toBe(false);
    expect(first.ciphertext.length).toBe(plaintext.length);
    expect(first.keys.iv.subarray(8).equals(Buffer.alloc(8))).toBe(true);
    const file = encryptedFile("mxc://tchap.localhost/abc", first.keys);
    expect(file).toMatchObject({ url: "mxc://tchap.localhost/abc", v: "v2", key: { alg: "A256CTR" } });
    // Through JSON, as it travels in the event.
    const { keys } = readEncryptedFile(JSON.parse(JSON.stringify(file)));
    expect(decryptAttachment(first.ciphertext, keys).equals(plaintext)).toBe(true);
  });

  it("refuses a ciphertext that was altered, before decrypting it", () => {
    const { keys } = readEncryptedFile(nistFile());
    const tampered = Buffer.from(nist.ciphertext);
    tampered[5] = (tampered[5] ?? 0) ^ 1;
    expect(refusal(() => decryptAttachment(tampered, keys))).toMatchObject({
      code: "FG_ATTACHMENT_INVALID",
      detail: { reason: "hash-mismatch" },
    });
    expect(refusal(() => decryptAttachment(nist.ciphertext.subarray(1), keys))).toMatchObject({
      code: "FG_ATTACHMENT_INVALID",
    });
  });

  it.each([
    ["not an object", "mxc://x/y"],
    ["version v1", { ...nistFile(), v: "v1" }],
    ["no version", { ...nistFile(), v: undefined }],
    ["an http url", { ...nistFile(), url: "https://evil.example/file" }],
    ["another algorithm", { ...nistFile(), key: { ...(nistFile()["key"] as object), alg: "A128CTR" } }],
    ["a short key", { ...nistFile(), key: { ...(nistFile()["key"] as object), k: "YD3rEBXKcb4rc67w" } }],
    ["a long key", { ...nistFile(), key: { ...(nistFile()["key"] as object), k: "A".repeat(4000) } }],
    ["a key not for decryption", { ...nistFile(), key: { ...(nistFile()["key"] as object), key_ops: [] } }],
    ["a short iv", { ...nistFile(), iv: "8PHy8/T19vf4" }],
    ["an iv that is not base64", { ...nistFile(), iv: "8PHy8/T19vf4+fr7/P3+/!" }],
    ["no hash", { ...nistFile(), hashes: {} }],
    ["a short hash", { ...nistFile(), hashes: { sha256: "AAAA" } }],
  ])("refuses a file object with %s", (_what, file) => {
    expect(refusal(() => readEncryptedFile(file))).toMatchObject({ code: "FG_ATTACHMENT_INVALID" });
  });
});
