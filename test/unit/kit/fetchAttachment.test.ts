/**
 * Downloading attachments against a local HTTP server: what describeAttachment learns, what
 * fetchAttachment verifies, and which failures are worth a retry. The server is on loopback, which the
 * bridges fetch from only when told to: every call here trusts it (fileHosts.test.ts tests that rule).
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  describeAttachment,
  fetchFile,
  fetchAttachment,
  normaliseMediaType,
  safeFileName,
} from "../../../bridges/kit/fetchAttachment.js";
import { FedgateError } from "../../../schemas/contract/errors.js";
import type { Attachment } from "../../../schemas/types.js";
import { sampleFile } from "../../helpers/fileServer.js";
import { rejectionWithout } from "../../helpers/rejection.js";

/** The test server's host, trusted by every call. */
const local = { hosts: { trusted: ["127.0.0.1"] } };
const content = Buffer.concat([Buffer.from("%PDF-1.7\n"), randomBytes(100_000 - 9)]);
const sha256 = createHash("sha256").update(content).digest("hex");
/** Stands for the secret part of a capability URL; no error message may contain it. */
const secret = "s3cr3t-slot-7f1c";

type Handler = (request: IncomingMessage, response: ServerResponse) => void;
const routes = new Map<string, Handler>();
let server: Server;
let base: string;
let host: string;
/** The Authorization header of every request to the echo routes, in order; "-" for none. */
const authorizations: string[] = [];
/** Another origin, for redirects that must not carry the Authorization header. */
let other: Server;
let otherBase: string;
/** What the endless route wrote before its client went away. */
let endless: Promise<{ written: number; finished: boolean }> | undefined;

function send(status: number, headers: Record<string, string> = {}, body: Buffer | string = ""): Handler {
  return (_request, response) => {
    response.writeHead(status, headers);
    response.end(body);
  };
}

beforeAll(async () => {
  routes.set(
    `/files/${secret}/R%C3%A9sum%C3%A9%20v2.pdf`,
    send(200, { "Content-Type": "Application/PDF" }, content),
  );
  routes.set(`/typed/${secret}/notes.txt`, send(200, { "Content-Type": "Text/Plain; Charset=UTF-8" }, "txt"));
  // A program, served as the picture its sender declared.
  routes.set(
    `/program/${secret}/photo.png`,
    send(200, { "Content-Type": "image/png" }, sampleFile("exe", 600)),
  );
  // No signature at all, served as a type that has one.
  routes.set(`/unsigned/${secret}/photo.png`, send(200, { "Content-Type": "image/png" }, "not a picture"));
  routes.set(
    `/picture/${secret}/photo.png`,
    send(200, { "Content-Type": "image/png" }, sampleFile("png", 600)),
  );
  routes.set(`/untyped/${secret}/`, send(200, { "Content-Type": "not a media type" }, "x"));
  routes.set(`/gone/${secret}/a.txt`, send(404, {}, "not here"));
  routes.set(`/busy/${secret}/a.txt`, send(503, {}, "later"));
  routes.set(`/throttled/${secret}/a.txt`, send(429, {}, "slow down"));
  routes.set(`/moved/${secret}/a.pdf`, send(302, { Location: `/files/${secret}/R%C3%A9sum%C3%A9%20v2.pdf` }));
  routes.set(`/to-ftp/${secret}/a.pdf`, send(302, { Location: "ftp://127.0.0.1/a.pdf" }));
  routes.set(`/loop/${secret}`, send(302, { Location: `/loop/${secret}` }));
  routes.set(`/declared-large/${secret}`, send(200, { "Content-Length": String(10 * 1024 * 1024) }, ""));
  routes.set(`/endless/${secret}`, (_request, response) => {
    // No Content-Length and no end: only the client's early abort stops this.
    response.writeHead(200, { "Content-Type": "application/octet-stream" });
    let written = 0;
    const chunk = Buffer.alloc(64 * 1024, 7);
    endless = new Promise((resolve) => {
      response.on("close", () => resolve({ written, finished: response.writableFinished }));
    });
    const pump = (): void => {
      while (!response.destroyed) {
        written += chunk.length;
        if (!response.write(chunk)) {
          response.once("drain", pump);
          return;
        }
      }
    };
    pump();
  });
  routes.set(`/five/${secret}`, send(200, { "Content-Length": "5" }, "12345"));
  routes.set(`/silent/${secret}`, () => undefined);
  routes.set(`/stalls/${secret}`, (_request, response) => {
    response.writeHead(200, { "Content-Length": "10" });
    response.write("12345");
  });
  routes.set(`/short/${secret}`, (_request, response) => {
    // Announces 10 bytes and hangs up after 5: a broken transfer, not a different file.
    response.writeHead(200, { "Content-Length": "10" });
    response.write("12345", () => response.destroy());
  });

  routes.set(`/echo-auth/${secret}`, (request, response) => {
    authorizations.push(request.headers.authorization ?? "-");
    send(200, {}, "ok")(request, response);
  });
  routes.set(`/auth-moved/${secret}`, send(302, { Location: `/echo-auth/${secret}` }));
  routes.set(`/auth-away/${secret}`, (request, response) => {
    send(302, { Location: `${otherBase}/echo` })(request, response);
  });
  routes.set(`/auth-away-and-back/${secret}`, (request, response) => {
    send(302, { Location: `${otherBase}/back` })(request, response);
  });

  server = createServer((request, response) => {
    const handler = routes.get(request.url ?? "");
    if (handler === undefined) send(404)(request, response);
    else handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  host = `127.0.0.1:${port}`;
  base = `http://${host}`;

  other = createServer((request, response) => {
    if (request.url === "/echo") {
      authorizations.push(request.headers.authorization ?? "-");
      send(200, {}, "ok")(request, response);
    } else send(302, { Location: `${base}/echo-auth/${secret}` })(request, response);
  });
  await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
  otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const each of [server, other]) {
    each.closeAllConnections();
    await new Promise((resolve) => each.close(resolve));
  }
});

function failure(promise: Promise<unknown>): Promise<FedgateError> {
  return rejectionWithout(promise, secret);
}

function attachmentAt(path: string, overrides: Partial<Attachment> = {}): Attachment {
  return {
    name: "Résumé v2.pdf",
    mediaType: "application/pdf",
    size: content.length,
    sha256,
    url: `${base}${path}`,
    ...overrides,
  };
}

const resume = `/files/${secret}/R%C3%A9sum%C3%A9%20v2.pdf`;

describe("describeAttachment", () => {
  it("learns size, SHA-256, media type and name, and keeps the URL", async () => {
    const url = `${base}${resume}`;
    expect(await describeAttachment(url, { ...local, maxBytes: 1024 * 1024 })).toEqual({
      name: "Résumé v2.pdf",
      mediaType: "application/pdf",
      size: content.length,
      sha256,
      url,
    });
  });

  it("lowercases the media type and strips its parameters; an odd one becomes application/octet-stream", async () => {
    const text = await describeAttachment(`${base}/typed/${secret}/notes.txt`, { ...local, maxBytes: 1024 });
    expect(text).toMatchObject({ mediaType: "text/plain", name: "notes.txt", size: 3 });
    const odd = await describeAttachment(`${base}/untyped/${secret}/`, { ...local, maxBytes: 1024 });
    // An empty last segment leaves only the fallback name.
    expect(odd).toMatchObject({ mediaType: "application/octet-stream", name: "file", size: 1 });
  });

  it("follows a redirect, naming the file after the URL it was given", async () => {
    const described = await describeAttachment(`${base}/moved/${secret}/a.pdf`, {
      ...local,
      maxBytes: 1024 * 1024,
    });
    expect(described).toMatchObject({ name: "a.pdf", sha256, size: content.length });
  });

  it("aborts as soon as the body exceeds maxBytes", async () => {
    const error = await failure(
      describeAttachment(`${base}/endless/${secret}`, { ...local, maxBytes: 64 * 1024 }),
    );
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
    expect(error.message).toContain(host);
    // The server's endless response was cut off: the client closed the connection.
    const outcome = await endless;
    expect(outcome?.finished).toBe(false);
    // At most what the socket buffers held when the client gave up, far from the endless whole.
    expect(outcome?.written).toBeLessThan(16 * 1024 * 1024);
  });

  it("refuses a body whose Content-Length already exceeds maxBytes", async () => {
    const error = await failure(
      describeAttachment(`${base}/declared-large/${secret}`, { ...local, maxBytes: 1024 }),
    );
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
  });

  it("refuses URLs that are not http(s), without echoing them", async () => {
    for (const url of [`ftp://127.0.0.1/${secret}`, `file:///etc/${secret}`, `not a url ${secret}`]) {
      const error = await failure(describeAttachment(url, { ...local, maxBytes: 1024 }));
      expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
    }
  });

  it("refuses a redirect to another scheme, and endless redirects", async () => {
    const ftp = await failure(
      describeAttachment(`${base}/to-ftp/${secret}/a.pdf`, { ...local, maxBytes: 1024 }),
    );
    expect(ftp).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
    const loop = await failure(describeAttachment(`${base}/loop/${secret}`, { ...local, maxBytes: 1024 }));
    expect(loop).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
  });

  it("describes a file with the type its bytes show, not the type it is served as", async () => {
    const program = await describeAttachment(`${base}/program/${secret}/photo.png`, {
      ...local,
      maxBytes: 1024,
    });
    expect(program).toMatchObject({ name: "photo.png", mediaType: "application/x-msdownload" });
    // A PNG has a signature: bytes without it are not a PNG, whatever they are.
    const unsigned = await describeAttachment(`${base}/unsigned/${secret}/photo.png`, {
      ...local,
      maxBytes: 1024,
    });
    expect(unsigned.mediaType).toBe("application/octet-stream");
    const picture = await describeAttachment(`${base}/picture/${secret}/photo.png`, {
      ...local,
      maxBytes: 1024,
    });
    expect(picture.mediaType).toBe("image/png");
    const { mediaType } = await fetchFile(`${base}/program/${secret}/photo.png`, {
      ...local,
      maxBytes: 1024,
    });
    expect(mediaType).toBe("application/x-msdownload");
  });

  it("sends the given headers, across same-origin redirects but never to another origin", async () => {
    const options = { ...local, maxBytes: 1024, headers: { Authorization: `Bearer ${secret}` } };
    authorizations.length = 0;
    await describeAttachment(`${base}/echo-auth/${secret}`, options);
    await describeAttachment(`${base}/auth-moved/${secret}`, options);
    expect(authorizations).toEqual([`Bearer ${secret}`, `Bearer ${secret}`]);

    authorizations.length = 0;
    await describeAttachment(`${base}/auth-away/${secret}`, options);
    // Once dropped, the header stays dropped, even when a redirect leads back to the first origin.
    await describeAttachment(`${base}/auth-away-and-back/${secret}`, options);
    expect(authorizations).toEqual(["-", "-"]);
  });

  it("gives up on a server that does not answer, or stalls in the body, as transient", async () => {
    const silent = await failure(
      describeAttachment(`${base}/silent/${secret}`, { ...local, maxBytes: 1024, headersTimeoutMs: 200 }),
    );
    expect(silent).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true });
    const stalls = await failure(
      describeAttachment(`${base}/stalls/${secret}`, { ...local, maxBytes: 1024, bodyTimeoutMs: 200 }),
    );
    expect(stalls).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true });
    const overall = await failure(
      describeAttachment(`${base}/stalls/${secret}`, { ...local, maxBytes: 1024, timeoutMs: 300 }),
    );
    expect(overall).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true });
    expect(overall.message).toContain("too long");
  });
});

describe("fetchFile", () => {
  it("returns the bytes and media type of a file no event describes, within maxBytes", async () => {
    const { bytes, mediaType } = await fetchFile(`${base}${resume}`, { ...local, maxBytes: 1024 * 1024 });
    expect(bytes.equals(content)).toBe(true);
    expect(mediaType).toBe("application/pdf");
    const tooLarge = await failure(fetchFile(`${base}${resume}`, { ...local, maxBytes: content.length - 1 }));
    expect(tooLarge).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
    expect(
      await failure(fetchFile(`${base}/busy/${secret}/a.txt`, { ...local, maxBytes: 1024 })),
    ).toMatchObject({
      transient: true,
    });
  });
});

describe("fetchAttachment", () => {
  it("returns the bytes when size and SHA-256 match", async () => {
    const bytes = await fetchAttachment(attachmentAt(resume), { ...local, maxBytes: 1024 * 1024 });
    expect(bytes.equals(content)).toBe(true);
  });

  it("refuses an attachment above maxBytes without downloading it", async () => {
    const error = await failure(fetchAttachment(attachmentAt(resume), { ...local, maxBytes: 1000 }));
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
  });

  it("refuses bytes that are more or fewer than the event says", async () => {
    for (const size of [content.length - 1, content.length + 1]) {
      const error = await failure(
        fetchAttachment(attachmentAt(resume, { size }), { ...local, maxBytes: 1024 * 1024 }),
      );
      expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
      expect(error.message).toContain("size");
    }
  });

  it("refuses a file whose Content-Length differs from the event's size once it arrived whole", async () => {
    const error = await failure(
      fetchAttachment(attachmentAt(`/five/${secret}`, { size: 10 }), { ...local, maxBytes: 1024 }),
    );
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
    // The unread body is destroyed after the refusal; that must not raise an error nobody handles.
    await new Promise((resolve) => setTimeout(resolve, 50));
  });

  it("refuses bytes whose SHA-256 differs", async () => {
    const error = await failure(
      fetchAttachment(attachmentAt(resume, { sha256: "0".repeat(64) }), { ...local, maxBytes: 1024 * 1024 }),
    );
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
    expect(error.message).toContain("SHA-256");
  });

  it("takes 404 as permanent, 503 and 429 as transient", async () => {
    const gone = await failure(
      fetchAttachment(attachmentAt(`/gone/${secret}/a.txt`), { ...local, maxBytes: 1024 * 1024 }),
    );
    expect(gone).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false, detail: { status: 404 } });
    expect(gone.message).toContain(host);
    const busy = await failure(
      fetchAttachment(attachmentAt(`/busy/${secret}/a.txt`), { ...local, maxBytes: 1024 * 1024 }),
    );
    expect(busy).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true, detail: { status: 503 } });
    const throttled = await failure(
      fetchAttachment(attachmentAt(`/throttled/${secret}/a.txt`), { ...local, maxBytes: 1024 * 1024 }),
    );
    expect(throttled).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true });
  });

  it("takes a refused connection and a cut-off transfer as transient", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const refused = await failure(
      fetchAttachment(
        { ...attachmentAt(""), url: `http://127.0.0.1:${port}/${secret}` },
        { ...local, maxBytes: 1024 * 1024 },
      ),
    );
    expect(refused).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true });
    expect(refused.message).toContain(`127.0.0.1:${port}`);

    const cut = await failure(
      fetchAttachment(attachmentAt(`/short/${secret}`, { size: 10 }), { ...local, maxBytes: 1024 }),
    );
    expect(cut).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true });
  });

  it("refuses bytes whose type contradicts the event's media type, though size and hash match", async () => {
    const program = sampleFile("exe", 600);
    const asPicture: Attachment = {
      name: "photo.png",
      mediaType: "image/png",
      size: program.length,
      sha256: createHash("sha256").update(program).digest("hex"),
      url: `${base}/program/${secret}/photo.png`,
    };
    const error = await failure(fetchAttachment(asPicture, { ...local, maxBytes: 1024 }));
    expect(error).toMatchObject({
      code: "FG_ATTACHMENT_INVALID",
      transient: false,
      detail: { mediaType: "image/png", shown: "application/x-msdownload" },
    });
    const picture = sampleFile("png", 600);
    const fine = { ...asPicture, sha256: createHash("sha256").update(picture).digest("hex") };
    const bytes = await fetchAttachment(
      { ...fine, url: `${base}/picture/${secret}/photo.png` },
      { ...local, maxBytes: 1024 },
    );
    expect(bytes.equals(picture)).toBe(true);
  });

  it("refuses an attachment whose URL is not http(s)", async () => {
    const error = await failure(
      fetchAttachment(attachmentAt("", { url: `file:///var/${secret}` }), {
        ...local,
        maxBytes: 1024 * 1024,
      }),
    );
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
  });
});

describe("normaliseMediaType and safeFileName", () => {
  it("normalises media types to the schema's pattern", () => {
    expect(normaliseMediaType("Text/Plain; charset=UTF-8")).toBe("text/plain");
    expect(normaliseMediaType(undefined)).toBe("application/octet-stream");
    expect(normaliseMediaType("text")).toBe("application/octet-stream");
    expect(normaliseMediaType("image/svg+xml")).toBe("image/svg+xml");
  });

  it("keeps names showable and short, with their extension", () => {
    expect(safeFileName("a/b\\c.txt")).toBe("a_b_c.txt");
    // A right-to-left override would show "invoice_fdp.exe" as "invoice_exe.pdf".
    expect(safeFileName("invoice_\u202efdp.exe")).toBe("invoice_fdp.exe");
    expect(safeFileName("\u0000\n")).toBe("file");
    expect(safeFileName("..")).toBe("file");
    const long = safeFileName(`${"ä".repeat(300)}.pdf`);
    expect(Array.from(long)).toHaveLength(255);
    expect(long.endsWith(".pdf")).toBe(true);
  });
});
