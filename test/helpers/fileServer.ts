import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { expect } from "vitest";
import type { Attachment } from "../../schemas/types.js";

/** A whole 1×1 PNG: file-type reads a PNG's header chunk, not only its signature. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);
const SIGNATURES = {
  png: PNG,
  jpeg: Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
  pdf: Buffer.from("%PDF-1.7\n"),
  // A Windows program: what a file declared as a picture must not turn out to be.
  exe: Buffer.from("MZ"),
} as const;

/**
 * `size` bytes of a file of `kind` as its signature shows it (magic bytes first, then filler varying with
 * `seed`): what a policy's type check reads, without the weight of a real file.
 */
export function sampleFile(kind: keyof typeof SIGNATURES, size: number, seed = 0): Buffer {
  const signature = SIGNATURES[kind];
  const filler = Buffer.from(
    Array.from({ length: Math.max(0, size - signature.length) }, (_, i) => (i * 7 + seed) % 256),
  );
  return Buffer.concat([signature, filler]).subarray(0, Math.max(size, signature.length));
}

/** A file another network's server would hold: the same bytes at any path, on 127.0.0.1. */
export interface ServedFile {
  url(name: string): string;
  /** The file as an event's attachment named `name`: its link, type, size and SHA-256. */
  attachment(name: string): Attachment;
  close(): Promise<void>;
}

export async function serveFile(bytes: Buffer, contentType: string): Promise<ServedFile> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": contentType }).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const url = (name: string): string => `http://127.0.0.1:${String(port)}/${encodeURIComponent(name)}`;
  return {
    url,
    attachment: (name) => ({
      name,
      mediaType: contentType,
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      url: url(name),
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A file link a bridge handed out gives `bytes`; without its signature, or under another name (the name is
 * signed), it gives nothing (403).
 */
export async function expectSignedLink(url: string | undefined, bytes: Buffer): Promise<void> {
  const fetched = await request(url ?? "");
  expect(fetched.statusCode).toBe(200);
  expect(Buffer.from(await fetched.body.arrayBuffer()).equals(bytes)).toBe(true);
  for (const altered of [
    (url ?? "").replace(/\?.*$/, ""),
    (url ?? "").replace(/\/[^/?]*\?/, "/renamed.exe?"),
  ]) {
    const refused = await request(altered);
    await refused.body.dump();
    expect(refused.statusCode, altered.replace(/sig=.*/, "sig=…")).toBe(403);
  }
}
