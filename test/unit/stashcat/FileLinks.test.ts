/**
 * The Stashcat bridge's file links: what a link opens, what it refuses, and the type it serves a file as.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileRouter, fileLink } from "../../../bridges/stashcat/FileLinks.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { sampleFile } from "../../helpers/fileServer.js";

const key = randomBytes(32);
const lifetimeSeconds = 3600;
const files = new Map<number, { info: { name: string; mediaType: string }; bytes: Buffer }>([
  [42, { info: { name: "Lagebild.pdf", mediaType: "application/pdf" }, bytes: sampleFile("pdf", 700) }],
  // A program its sender declared a picture.
  [43, { info: { name: "foto.png", mediaType: "image/png" }, bytes: sampleFile("exe", 700) }],
]);
const opened: number[] = [];
let server: Server;
let base = "";

beforeAll(async () => {
  const app = express();
  app.use(
    createFileRouter({
      key,
      log: createLogger("silent"),
      open: (fileId) => {
        opened.push(fileId);
        const file = files.get(fileId);
        return file === undefined
          ? Promise.reject(new PermanentError("FG_NATIVE_INVALID", "no such file"))
          : Promise.resolve(file);
      },
    }),
  );
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function get(url: string): Promise<{ status: number; type: unknown; body: Buffer }> {
  const response = await request(url);
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, type: response.headers["content-type"], body };
}

describe("Stashcat file links", () => {
  it("Stashcat files - a link opens its file, named and typed as its bytes show", async () => {
    const pdf = await get(fileLink({ key, baseUrl: base, lifetimeSeconds }, 42, "Lagebild.pdf"));
    expect(pdf).toMatchObject({ status: 200, type: "application/pdf" });
    expect(pdf.body.equals(files.get(42)?.bytes ?? Buffer.alloc(0))).toBe(true);
    const program = await get(fileLink({ key, baseUrl: base, lifetimeSeconds }, 43, "foto.png"));
    expect(program).toMatchObject({ status: 200, type: "application/x-msdownload" });
  });

  it("Stashcat files - a link is refused once expired (410), renamed or for another file (403)", async () => {
    opened.length = 0;
    const expired = fileLink(
      { key, baseUrl: base, lifetimeSeconds },
      42,
      "Lagebild.pdf",
      Date.now() - 3 * 3600_000,
    );
    expect((await get(expired)).status).toBe(410);
    const good = fileLink({ key, baseUrl: base, lifetimeSeconds }, 42, "Lagebild.pdf");
    expect((await get(good.replace("Lagebild.pdf", "Lagebild.exe"))).status).toBe(403);
    expect((await get(good.replace("/42/", "/43/"))).status).toBe(403);
    expect((await get(good.replace(/\?.*$/, ""))).status).toBe(403);
    expect(opened).toEqual([]);
  });
});
