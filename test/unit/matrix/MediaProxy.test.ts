/**
 * The media proxy against a local server standing in for the homeserver's authenticated media download:
 * signed links, what is refused (bad signatures, files over the limit) and how upstream failures show.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { request } from "undici";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MatrixClient } from "../../../bridges/matrix/MatrixClient.js";
import { createMediaRouter, mediaLink, mediaPathPrefix } from "../../../bridges/matrix/MediaProxy.js";
import { encryptAttachment } from "../../../bridges/matrix/crypto/encryptedAttachment.js";
import { FedgateError } from "../../../schemas/contract/errors.js";
import { createLogger } from "../../../gateway/platform/log.js";

const asToken = "as-token-5d0b9e";
const key = randomBytes(32);
const lifetimeSeconds = 86_400;
const maxBytes = 1000;
const small = randomBytes(600);
/** `small` as an official's client uploads it in an encrypted room. */
const encrypted = encryptAttachment(small);

type Handler = (request: IncomingMessage, response: ServerResponse) => void;
const files = new Map<string, Handler>();
/** The Authorization header of every request the homeserver got. */
const authorizations: (string | undefined)[] = [];
/** How the big file's response ended: finished, or cut off by its client. */
let bigOutcome: Promise<{ finished: boolean }> | undefined;
/** The same for the file that never finishes. */
let slowOutcome: Promise<{ finished: boolean }> | undefined;

let homeserver: Server;
let proxy: Server;
let proxyBase: string;
const logs: string[] = [];

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }),
  );
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A proxy app: the media router, then a handler that shows when a request went past it. */
function proxyApp(client: MatrixClient): express.Express {
  const app = express();
  app.use(
    createMediaRouter({
      client,
      key,
      baseUrl: "http://unused",
      maxBytes,
      log: createLogger("debug", "test", { write: (line: string) => logs.push(line) }),
    }),
  );
  app.use((_req, res) => {
    res.status(418).send("past the media router");
  });
  return app;
}

beforeAll(async () => {
  files.set("small", (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; charset=iso-8859-1", "content-length": small.length });
    res.end(small);
  });
  files.set("unsized", (_req, res) => {
    res.writeHead(200, { "content-type": "image/png" });
    res.write(small.subarray(0, 300));
    setTimeout(() => res.end(small.subarray(300)), 20);
  });
  files.set("unsized-big", (_req, res) => {
    res.writeHead(200, { "content-type": "image/png" });
    res.write(randomBytes(800));
    res.end(randomBytes(800));
  });
  files.set("big", (_req, res) => {
    res.writeHead(200, { "content-type": "video/mp4", "content-length": 10 * 1024 * 1024 });
    bigOutcome = new Promise((resolve) => res.on("close", () => resolve({ finished: res.writableFinished })));
    const chunk = Buffer.alloc(64 * 1024);
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once("drain", pump);
    };
    pump();
  });
  files.set("cut", (_req, res) => {
    res.writeHead(200, { "content-type": "application/pdf", "content-length": 500 });
    res.write(Buffer.alloc(100), () => res.destroy());
  });
  files.set("slow", (_req, res) => {
    res.writeHead(200, { "content-type": "application/pdf", "content-length": 900 });
    slowOutcome = new Promise((resolve) =>
      res.on("close", () => resolve({ finished: res.writableFinished })),
    );
    res.write(Buffer.alloc(100));
  });
  files.set("encrypted", (_req, res) => {
    res.writeHead(200, { "content-type": "text/html", "content-length": encrypted.ciphertext.length });
    res.end(encrypted.ciphertext);
  });
  files.set("broken", (_req, res) => {
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ errcode: "M_UNKNOWN", error: "Internal server error" }));
  });

  homeserver = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    const match = /^\/_matrix\/client\/v1\/media\/download\/tchap\.localhost\/([A-Za-z0-9_-]+)$/.exec(
      req.url ?? "",
    );
    const handler = match?.[1] === undefined ? undefined : files.get(match[1]);
    if (handler !== undefined) {
      handler(req, res);
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ errcode: "M_NOT_FOUND", error: "Not found" }));
  });
  const homeserverUrl = await listen(homeserver);
  const client = new MatrixClient({ homeserverUrl, asToken, log: createLogger("silent") });
  proxy = createServer(proxyApp(client));
  proxyBase = await listen(proxy);
});

afterAll(async () => {
  await close(proxy);
  await close(homeserver);
});

beforeEach(() => {
  logs.length = 0;
  authorizations.length = 0;
});

/** The proxy's link to a file of the stand-in homeserver, made at `now` (default: now). */
function link(mediaId: string, name = "Lagebild 1.pdf", now?: number): string {
  return mediaLink(
    { key, baseUrl: proxyBase, lifetimeSeconds },
    `mxc://tchap.localhost/${mediaId}`,
    name,
    now,
  );
}

async function get(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const response = await request(url);
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body };
}

describe("mediaLink", () => {
  it("names server, media id and file under the prefix, with an expiry, signed with an HMAC of all three", () => {
    const url = mediaLink(
      { key: "k", baseUrl: "http://bridge:9000/", lifetimeSeconds: 86_400 },
      "mxc://tchap.localhost/AbC_1-2",
      "a b/ü.pdf",
      Date.UTC(2025, 2, 1, 12, 30),
    );
    // Expires 2025-03-02T12:00:00Z: the end of the next half-day after 2025-03-01T12:30Z.
    const exp = 1740916800;
    // HMAC-SHA256("k", '["tchap.localhost/AbC_1-2","a b/ü.pdf",1740916800]'), base64url.
    const sig = "0aokplFzLGkDVRUz5M-FIeVpowWEXWdCkzM9OsuZGTg";
    expect(url).toBe(
      `http://bridge:9000/_fedgate/media/v1/tchap.localhost/AbC_1-2/a%20b%2F%C3%BC.pdf?exp=${exp}&sig=${sig}`,
    );
    expect(url.startsWith(`http://bridge:9000${mediaPathPrefix}/`)).toBe(true);
  });

  it("refuses a malformed mxc URI", () => {
    for (const mxc of [
      "https://tchap.localhost/abc",
      "mxc://tchap.localhost/a/b",
      "mxc://tchap.localhost/",
      "mxc://a b/c",
    ]) {
      expect(() => mediaLink({ key, baseUrl: "http://bridge", lifetimeSeconds }, mxc, "f")).toThrow(
        FedgateError,
      );
    }
  });
});

describe("createMediaRouter", () => {
  it("streams a file for a signed link, as the AS, with its type and length and as a download", async () => {
    const { status, headers, body } = await get(link("small", "Lagebild 1.pdf"));
    expect(status).toBe(200);
    expect(body.equals(small)).toBe(true);
    expect(headers).toMatchObject({
      "content-type": "text/plain; charset=iso-8859-1",
      "content-length": String(small.length),
      "x-content-type-options": "nosniff",
      "content-disposition": `attachment; filename="Lagebild 1.pdf"; filename*=UTF-8''Lagebild%201.pdf`,
    });
    expect(authorizations).toEqual([`Bearer ${asToken}`]);
    const head = await request(link("small"), { method: "HEAD" });
    expect(head.statusCode).toBe(200);
    expect(head.headers["content-length"]).toBe(String(small.length));
    expect((await head.body.arrayBuffer()).byteLength).toBe(0);
  });

  it("names a download with a non-ASCII name both ways", async () => {
    const { headers } = await get(link("small", 'Prüfbericht "final".pdf'));
    expect(headers["content-disposition"]).toBe(
      `attachment; filename="Pr_fbericht _final_.pdf"; filename*=UTF-8''Pr%C3%BCfbericht%20%22final%22.pdf`,
    );
  });

  it("refuses a missing, wrong or borrowed signature with 403, logging no signature", async () => {
    const good = new URL(link("small"));
    const sig = good.searchParams.get("sig") ?? "";
    const missing = new URL(good);
    missing.search = "";
    const wrong = new URL(good);
    wrong.searchParams.set("sig", `${sig.slice(0, -2)}AA`);
    // A valid signature for one file does not open another.
    const borrowed = new URL(good.href.replace("/small/", "/unsized/"));
    const garbage = new URL(good);
    garbage.searchParams.set("sig", "not base64url!");
    for (const url of [missing, wrong, borrowed, garbage]) {
      const { status } = await get(url.href);
      expect(status, url.pathname + url.search).toBe(403);
    }
    expect(authorizations).toEqual([]);
    expect(logs).toHaveLength(4);
    for (const line of logs) {
      expect(JSON.parse(line)).toMatchObject({ level: 40, code: "FG_AUTH_INVALID" });
      expect(line).not.toContain(sig.slice(0, 20));
    }
    // The name is signed too: whoever holds a link cannot make the file download as a program.
    logs.length = 0;
    const renamed = await get(good.href.replace("Lagebild%201.pdf", "Lagebild%201.exe"));
    expect(renamed.status).toBe(403);
    const later = new URL(good);
    later.searchParams.set("exp", String(Number(good.searchParams.get("exp")) + 86_400));
    expect((await get(later.href)).status).toBe(403);
    expect(authorizations).toEqual([]);
  });

  it("refuses a link past its expiry with 410, without asking the homeserver", async () => {
    const old = link("small", "Lagebild 1.pdf", Date.now() - 2 * lifetimeSeconds * 1000);
    const { status, body } = await get(old);
    expect(status).toBe(410);
    expect(JSON.parse(body.toString())).toEqual({ error: "the link has expired" });
    expect(authorizations).toEqual([]);
    expect(logs.join("\n")).not.toContain(new URL(old).searchParams.get("sig") ?? "?");
  });

  it("passes every other path on to the next handler", async () => {
    for (const path of [
      "/_matrix/app/v1/ping",
      `${mediaPathPrefix}/tchap.localhost/small`,
      "/_fedgate/other",
    ]) {
      const { status } = await get(`${proxyBase}${path}`);
      expect(status, path).toBe(418);
    }
  });

  it("refuses a file whose announced size is over the limit with 413, and stops its download", async () => {
    const { status } = await get(link("big"));
    expect(status).toBe(413);
    expect(await bigOutcome).toEqual({ finished: false });
  });

  it("measures a file of unannounced size: sends it with its length, or refuses it with 413", async () => {
    const fits = await get(link("unsized"));
    expect(fits.status).toBe(200);
    expect(fits.headers["content-length"]).toBe(String(small.length));
    expect(fits.body.equals(small)).toBe(true);
    const over = await get(link("unsized-big"));
    expect(over.status).toBe(413);
  });

  it("answers 404 for a file the homeserver does not have, 502 when it fails", async () => {
    expect((await get(link("nothing"))).status).toBe(404);
    expect((await get(link("broken"))).status).toBe(502);
  });

  it("cuts its response short when the homeserver's transfer breaks off, and keeps serving", async () => {
    const error: unknown = await get(link("cut")).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(Error);
    expect((await get(link("small"))).status).toBe(200);
  });

  it("stops the homeserver's transfer when its client goes away, and keeps serving", async () => {
    const response = await request(link("slow"));
    expect(response.statusCode).toBe(200);
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect(await slowOutcome).toEqual({ finished: false });
    expect((await get(link("small"))).status).toBe(200);
  });

  it("serves an encrypted attachment's plaintext for a link that carries its key, sealed", async () => {
    const url = mediaLink(
      { key, baseUrl: proxyBase, lifetimeSeconds },
      "mxc://tchap.localhost/encrypted",
      "bericht.pdf",
      undefined,
      encrypted.keys,
    );
    expect(url).not.toContain(encrypted.keys.key.toString("base64url"));
    expect(url).not.toContain(encrypted.keys.key.toString("hex"));
    const { status, headers, body } = await get(url);
    expect(status).toBe(200);
    expect(body.equals(small)).toBe(true);
    // The uploader's type is the ciphertext's, and says nothing of the file.
    expect(headers).toMatchObject({ "content-type": "application/octet-stream", "content-length": "600" });

    const sealed = new URL(url).searchParams.get("k") ?? "";
    const altered = sealed.slice(0, 10) + (sealed[10] === "A" ? "B" : "A") + sealed.slice(11);
    // The key of another file: the signature covers the file and its sealed key, and the seal is bound to it.
    const plain = link("encrypted", "bericht.pdf");
    for (const wrong of [
      url.replace(sealed, altered),
      url.replace(`k=${sealed}`, `k=${sealed}&k=${sealed}`),
      url.replace("/encrypted/", "/small/"),
      `${plain}&k=${sealed}`,
    ]) {
      expect((await get(wrong)).status, wrong.replace(/sig=.*/, "…")).toBe(403);
    }
  });

  it("refuses an encrypted attachment whose ciphertext is not the one its key was sent with", async () => {
    const url = mediaLink(
      { key, baseUrl: proxyBase, lifetimeSeconds },
      "mxc://tchap.localhost/small",
      "bericht.pdf",
      undefined,
      encrypted.keys,
    );
    const { status, body } = await get(url);
    expect(status).toBe(502);
    expect(body.includes(small)).toBe(false);
    expect(logs.some((line) => line.includes("FG_ATTACHMENT_INVALID"))).toBe(true);
  });

  it("answers 502 when the homeserver cannot be reached", async () => {
    const closed = createServer();
    const url = await listen(closed);
    await close(closed);
    const app = createServer(
      proxyApp(new MatrixClient({ homeserverUrl: url, asToken, log: createLogger("silent") })),
    );
    const base = await listen(app);
    try {
      const { status } = await get(
        mediaLink({ key, baseUrl: base, lifetimeSeconds }, "mxc://tchap.localhost/small", "a.pdf"),
      );
      expect(status).toBe(502);
      expect(logs.some((line) => line.includes("FG_PEER_UNAVAILABLE"))).toBe(true);
      expect(logs.join("\n")).not.toContain(asToken);
    } finally {
      await close(app);
    }
  });
});
