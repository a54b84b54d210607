import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { expect } from "vitest";
import type { Attachment } from "../../schemas/types.js";

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

/** A file link a bridge handed out gives `bytes`; without its signature it gives nothing (403). */
export async function expectSignedLink(url: string | undefined, bytes: Buffer): Promise<void> {
  const fetched = await request(url ?? "");
  expect(fetched.statusCode).toBe(200);
  expect(Buffer.from(await fetched.body.arrayBuffer()).equals(bytes)).toBe(true);
  const unsigned = await request((url ?? "").replace(/\?.*$/, ""));
  await unsigned.body.dump();
  expect(unsigned.statusCode).toBe(403);
}
