/**
 * Which hosts the bridges fetch files from: a link from a native user or an event must not make a bridge
 * read its own network's internal services (SSRF), nor tell open ports from closed ones. Local servers stand
 * in for the internal services; the name resolutions are real (localhost) or stubbed.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { describeAttachment, fetchAttachment, fetchFile } from "../../../bridges/kit/fetchAttachment.js";
import { fileHostDispatcher, pinnedLookup } from "../../../bridges/kit/fileHostDispatcher.js";
import { isTrustedHost } from "../../../bridges/kit/fileHosts.js";
import { isPublicAddress } from "../../../bridges/kit/publicAddress.js";
import { type FedgateError, PermanentError } from "../../../schemas/contract/errors.js";
import { rejectionWithout } from "../../helpers/rejection.js";

/** Stands for the secret part of a capability URL; no error message may contain it. */
const secret = "s3cr3t-internal-4b1d";
const body = "internal service: admin console";

/** The paths each internal server was asked for. */
const asked: string[] = [];
/** An internal service, on every loopback address (IPv4 and IPv6). */
let internal: Server;
let port = 0;
/** A port nothing listens on. */
let closedPort = 0;

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port)),
  );
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

beforeAll(async () => {
  internal = createServer((req, res) => {
    asked.push(req.url ?? "");
    if (req.url?.startsWith("/to-loopback/") === true) {
      res.writeHead(302, { location: `http://127.0.0.1:${String(closedPort)}/${secret}` }).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/plain", "content-length": body.length }).end(body);
  });
  port = await listen(internal, "::");
  const closed = createServer();
  closedPort = await listen(closed, "127.0.0.1");
  await close(closed);
});

afterAll(async () => {
  await close(internal);
});

beforeEach(() => {
  asked.length = 0;
});

const limits = { maxBytes: 1024, timeoutMs: 5000 };

describe("file hosts - the default: public addresses only", () => {
  it("file hosts - loopback in every literal form is refused before any connection", async () => {
    const forms = [
      `http://127.0.0.1:${String(port)}/${secret}`,
      // 127.0.0.1 as one number, in hex, and shortened: the URL parser reads them all as 127.0.0.1.
      `http://2130706433:${String(port)}/${secret}`,
      `http://0x7f.1:${String(port)}/${secret}`,
      `http://127.1:${String(port)}/${secret}`,
      `http://[::1]:${String(port)}/${secret}`,
      `http://[::ffff:127.0.0.1]:${String(port)}/${secret}`,
      `http://[0:0:0:0:0:ffff:7f00:1]:${String(port)}/${secret}`,
      `http://localhost:${String(port)}/${secret}`,
      `http://LocalHost:${String(port)}/${secret}`,
    ];
    for (const url of forms) {
      const error = await rejectionWithout(describeAttachment(url, limits), secret);
      expect(error, url).toBeInstanceOf(PermanentError);
      expect(error, url).toMatchObject({ code: "FG_ATTACHMENT_INVALID", detail: { refused: true } });
    }
    expect(asked).toEqual([]);
  });

  it("file hosts - private, shared (CGNAT), link-local and metadata addresses are refused without a connection attempt", async () => {
    for (const host of [
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "100.64.0.1",
      "169.254.169.254",
      "0.0.0.0",
      "[fd00:ec2::254]",
      "[fe80::1]",
      "[::]",
      "[64:ff9b::a00:1]",
      "[2002:a00:1::]",
    ]) {
      const started = Date.now();
      const error = await rejectionWithout(
        fetchFile(`http://${host}/${secret}`, { ...limits, timeoutMs: 30_000 }),
        secret,
      );
      // Refused at once, not after a connection attempt that timed out or was turned away.
      expect(error, host).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
      expect(error.detail, host).toMatchObject({ refused: true });
      expect(Date.now() - started, host).toBeLessThan(2000);
    }
  });

  it("file hosts - an open and a closed loopback port give the same refusal", async () => {
    const open = await rejectionWithout(describeAttachment(`http://127.0.0.1:${String(port)}/a`, limits));
    const closed = await rejectionWithout(
      describeAttachment(`http://127.0.0.1:${String(closedPort)}/a`, limits),
    );
    const strip = (e: FedgateError): unknown => ({
      name: e.name,
      code: e.code,
      transient: e.transient,
      message: e.message.replace(/:\d+/, ":PORT"),
    });
    expect(strip(open)).toEqual(strip(closed));
    expect(asked).toEqual([]);
  });

  it("file hosts - a redirect to loopback from a host that may be fetched is refused", async () => {
    const trusted = { trusted: [`127.0.0.1:${String(port)}`], publicHosts: true };
    const error = await rejectionWithout(
      describeAttachment(`http://127.0.0.1:${String(port)}/to-loopback/${secret}`, {
        ...limits,
        hosts: trusted,
      }),
      secret,
    );
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", detail: { refused: true } });
    expect(asked).toEqual([`/to-loopback/${secret}`]);
  });

  it("file hosts - the bytes of an event's attachment are not fetched from loopback either", async () => {
    const error = await rejectionWithout(
      fetchAttachment(
        {
          name: "a.txt",
          mediaType: "text/plain",
          size: body.length,
          sha256: "0".repeat(64),
          url: `http://localhost:${String(port)}/${secret}`,
        },
        limits,
      ),
      secret,
    );
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", detail: { refused: true } });
    expect(asked).toEqual([]);
  });
});

describe("file hosts - the operator's hosts", () => {
  it("file hosts - a listed host is fetched whatever its address; the list names hosts, not addresses", async () => {
    const url = `http://localhost:${String(port)}/listed`;
    for (const trusted of [
      [`localhost:${String(port)}`],
      ["LocalHost"],
      [`http://localhost:${String(port)}/files/`],
    ]) {
      const described = await describeAttachment(url, { ...limits, hosts: { trusted, publicHosts: true } });
      expect(described.size, trusted[0]).toBe(body.length);
    }
    // Another port of a host listed with a port, or another name for the same address: refused.
    for (const trusted of [[`localhost:${String(closedPort)}`], [`127.0.0.1:${String(port)}`]]) {
      const error = await rejectionWithout(
        describeAttachment(url, { ...limits, hosts: { trusted, publicHosts: true } }),
      );
      expect(error.detail, trusted[0]).toMatchObject({ refused: true });
    }
    expect(asked).toEqual(["/listed", "/listed", "/listed"]);
  });

  it("file hosts - publicHosts false fetches from the listed hosts only", async () => {
    const hosts = { trusted: ["upload.bpol.example"], publicHosts: false };
    const error = await rejectionWithout(fetchFile("http://93.184.215.14/a.png", { ...limits, hosts }));
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", detail: { refused: true } });
  });

  it("file hosts - host rules match names and ports as URLs spell them", () => {
    const hosts = { trusted: ["Upload.Example", "files.example:8443", "[::1]:80", "https://media.example"] };
    expect(isTrustedHost(hosts, "upload.example", 1234)).toBe(true);
    expect(isTrustedHost(hosts, "files.example", 8443)).toBe(true);
    expect(isTrustedHost(hosts, "files.example", 443)).toBe(false);
    expect(isTrustedHost(hosts, "[::1]", 80)).toBe(true);
    expect(isTrustedHost(hosts, "::1", 80)).toBe(true);
    expect(isTrustedHost(hosts, "media.example", 443)).toBe(true);
    expect(isTrustedHost(hosts, "media.example", 80)).toBe(false);
    expect(isTrustedHost(hosts, "evil-upload.example", 80)).toBe(false);
    // An entry that names no host is a config error, not a host that matches nothing.
    for (const entry of ["ftp://files.example", "files.example:http", "a b"])
      expect(() => isTrustedHost({ trusted: [entry] }, "files.example", 80), entry).toThrow(
        expect.objectContaining({ code: "FG_CONFIG_INVALID" }),
      );
  });
});

describe("file hosts - addresses", () => {
  it("file hosts - only global unicast addresses are public", () => {
    for (const address of ["8.8.8.8", "93.184.215.14", "2001:4860:4860::8888", "::ffff:8.8.8.8"])
      expect(isPublicAddress(address), address).toBe(true);
    for (const address of [
      "127.0.0.1",
      "127.255.0.9",
      "::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "::127.0.0.1",
      "10.1.2.3",
      "172.31.255.255",
      "192.168.0.1",
      "100.64.0.1",
      "100.100.100.200",
      "169.254.169.254",
      "fd00:ec2::254",
      "fe80::1",
      "fec0::1",
      "0.0.0.0",
      "::",
      "224.0.0.1",
      "ff02::1",
      "255.255.255.255",
      "192.0.2.1",
      "198.18.0.1",
      "240.0.0.1",
      "2001:db8::1",
      "64:ff9b::7f00:1",
      "2002:7f00:1::",
      "2001::1",
      "4000::1",
      "not an address",
    ])
      expect(isPublicAddress(address), address).toBe(false);
  });
});

describe("file hosts - resolution", () => {
  type Resolved = { address: string; family: number }[];
  const stubResolver = (
    answers: Resolved[],
  ): { resolve: (host: string) => Promise<Resolved>; calls: string[] } => {
    const calls: string[] = [];
    return {
      calls,
      resolve: (host) => {
        calls.push(host);
        return Promise.resolve(answers[Math.min(calls.length - 1, answers.length - 1)] ?? []);
      },
    };
  };

  it("file hosts - a name is refused when any of its addresses is not public", async () => {
    const { resolve } = stubResolver([
      [
        { address: "93.184.215.14", family: 4 },
        { address: "10.0.0.7", family: 4 },
      ],
    ]);
    const lookup = pinnedLookup(resolve, isPublicAddress);
    const error = await new Promise<unknown>((done) => lookup("files.example", { all: true }, done));
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", detail: { refused: true } });
  });

  it("file hosts - rebinding is impossible: a name is resolved once, and the connection goes to the address checked", async () => {
    // 127.0.0.2 stands in for a public address here; 127.0.0.1, what the name rebinds to, for an internal one.
    const good = createServer((_req, res) => res.end("public file"));
    const goodPort = await listen(good, "127.0.0.2");
    const evil = createServer((req, res) => {
      asked.push(req.url ?? "");
      res.end("internal");
    });
    await new Promise<void>((resolve) => evil.listen(goodPort, "127.0.0.1", resolve));
    const { resolve, calls } = stubResolver([
      [{ address: "127.0.0.2", family: 4 }],
      [{ address: "127.0.0.1", family: 4 }],
    ]);
    const dispatcher = fileHostDispatcher(
      { trusted: [], publicHosts: true },
      { resolve, isAllowedAddress: (address) => address === "127.0.0.2" },
    );
    try {
      // Were the name resolved once to check and again to connect, this would reach the internal server.
      const first = await request(`http://files.example:${String(goodPort)}/first`, {
        dispatcher,
        reset: true,
      });
      expect(await first.body.text()).toBe("public file");
      expect(calls).toEqual(["files.example"]);
      // The next connection resolves again, and the rebound answer is refused, not connected to.
      const second = await rejectionWithout(
        request(`http://files.example:${String(goodPort)}/second`, { dispatcher, reset: true }),
      );
      expect(second).toMatchObject({ code: "FG_ATTACHMENT_INVALID", detail: { refused: true } });
      expect(calls).toEqual(["files.example", "files.example"]);
      expect(asked).toEqual([]);
    } finally {
      await dispatcher.close();
      await close(good);
      await close(evil);
    }
  });
});
