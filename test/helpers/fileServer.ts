import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** A file another network's server would hold: the same bytes at any path, on 127.0.0.1. */
export interface ServedFile {
  url(name: string): string;
  close(): Promise<void>;
}

export async function serveFile(bytes: Buffer, contentType: string): Promise<ServedFile> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": contentType }).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name) => `http://127.0.0.1:${String(port)}/${encodeURIComponent(name)}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
