import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../../harness/servers/serverProcess.js";

describe("freePort", () => {
  it("freePort - chooses free ports outside the range outgoing connections take theirs from", async () => {
    const range = await readFile("/proc/sys/net/ipv4/ip_local_port_range", "utf8").catch(() => undefined);
    const low = range === undefined ? 32768 : Number(range.trim().split(/\s+/)[0]);
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      expect(port).toBeLessThan(low);
      expect(port).toBeGreaterThanOrEqual(10_000);
      // Free: it can be listened on.
      await new Promise<void>((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => server.close(() => resolve()));
      });
    }
  });
});
