import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Attachment, NormalisedEvent } from "../../../schemas/types.js";
import type { RunningXmppBridge } from "../../../bridges/xmpp/XmppBridge.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { sampleFile } from "../../helpers/fileServer.js";
import { eventually } from "../../helpers/fixtures.js";
import { startNatsOrSkip } from "../../helpers/nats.js";
import { type Element, startProsodyOrSkip, stopClient, xml, type XmppClient } from "../../helpers/prosody.js";
import { NS } from "../../helpers/xmppNamespaces.js";
import * as scene from "../../helpers/xmppScenes.js";

const nats = await startNatsOrSkip();
const prosody = nats === undefined ? undefined : await startProsodyOrSkip();
const log = createLogger("silent");

const MAX_BYTES = 256 * 1024;
const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

describe.skipIf(nats === undefined || prosody === undefined)(
  "XMPP bridge - files (XEP-0363, XEP-0066)",
  () => {
    let bus: JetStreamBus;
    let bridge: RunningXmppBridge;
    let officer: XmppClient;
    let tchapFiles: Server;
    let tchapBase = "";
    /** A service inside the bridge's network, on loopback, that no link may make the bridge read. */
    let internal: Server;
    let internalPort = 0;
    /** The paths the internal service was asked for. */
    const internalAsked: string[] = [];
    const served = new Map<string, { bytes: Buffer; type: string }>();
    const heard: Element[] = [];
    const present = new Set<string>();
    const inbound: NormalisedEvent[] = [];
    let room = "";
    let n = 0;

    /** What the Matrix bridge would publish: a file Claire shared on Tchap, served from its media API. */
    const shareFromTchap = async (
      name: string,
      bytes: Buffer,
      type: string,
      body?: string,
    ): Promise<Attachment> => {
      served.set(`/${name}`, { bytes, type });
      const attachment: Attachment = {
        name,
        mediaType: type,
        size: bytes.length,
        sha256: sha256(bytes),
        url: `${tchapBase}/${encodeURIComponent(name)}`,
      };
      await scene.deliverFromClaire(bus, scene.roomTarget(room), {
        id: `tchap-file-${++n}-${randomBytes(4).toString("hex")}`,
        type: "message.created",
        content: { attachments: [attachment], ...(body === undefined ? {} : { body }) },
      });
      return attachment;
    };

    /** A message with a link to a file (XEP-0066), as XMPP clients send one. */
    const sendLink = (id: string, url: string): Promise<void> =>
      officer.send(
        xml(
          "message",
          { to: room, type: "groupchat", id },
          xml("body", {}, url),
          xml("x", { xmlns: NS.oob }, xml("url", {}, url)),
        ),
      );

    /** An officer shares a file as XMPP clients do: a slot from the upload service, a PUT, a link. */
    const shareFromXmpp = async (name: string, bytes: Buffer, type: string): Promise<string> => {
      const { status, url } = await scene.uploadAsClient(officer, prosody?.uploadDomain ?? "", {
        name,
        bytes,
        type,
      });
      expect(status).toBeLessThan(300);
      await sendLink(`file-${name}`, url);
      return url;
    };

    beforeAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      room = `lage@${prosody.mucDomain}`;
      tchapFiles = createServer((req, res) => {
        const file = served.get(decodeURIComponent(req.url ?? ""));
        if (file === undefined) {
          res.writeHead(404).end();
          return;
        }
        res
          .writeHead(200, { "content-type": file.type, "content-length": file.bytes.length })
          .end(file.bytes);
      });
      await new Promise<void>((resolve) => tchapFiles.listen(0, "127.0.0.1", resolve));
      tchapBase = `http://127.0.0.1:${(tchapFiles.address() as AddressInfo).port}`;
      internal = createServer((req, res) => {
        internalAsked.push(req.url ?? "");
        res.writeHead(200, { "content-type": "text/plain" }).end("admin console");
      });
      await new Promise<void>((resolve) => internal.listen(0, "127.0.0.1", resolve));
      internalPort = (internal.address() as AddressInfo).port;
      // Prosody's upload service and Tchap's files are on loopback too: the bridge's config lists them.
      ({ bus, bridge, officer } = await scene.bridgedRoom(
        { natsUrl: nats.url, server: prosody, log, room, inbound, heard, present },
        { attachments: { maxBytes: MAX_BYTES, hosts: [prosody.httpUrl, tchapBase] } },
      ));
    });

    afterAll(async () => {
      if (nats === undefined || prosody === undefined) return;
      await stopClient(officer);
      await bridge.stop();
      await bus.close();
      await new Promise((resolve) => tchapFiles.close(resolve));
      await new Promise((resolve) => internal.close(resolve));
      await prosody.stop();
      await nats.stop();
    });

    it("inbound - a file an officer shares becomes an attachment with its size, type and hash, and no text", async () => {
      const bytes = sampleFile("png", 40_000);
      const url = await shareFromXmpp("lagebild.png", bytes, "image/png");
      const event = await eventually(() =>
        inbound.find((e) => e.content?.attachments?.some((a) => a.name === "lagebild.png") === true),
      );
      expect(event.type).toBe("message.created");
      expect(event.content?.body).toBeUndefined();
      expect(event.content?.attachments).toEqual([
        { name: "lagebild.png", mediaType: "image/png", size: bytes.length, sha256: sha256(bytes), url },
      ]);
    });

    it("outbound - a file from Tchap is uploaded to Prosody by the puppet and announced with its link", async () => {
      const bytes = sampleFile("jpeg", 50_000);
      await shareFromTchap("carte.jpg", bytes, "image/jpeg");
      const claire = `${room}/Claire Martin (Ministère de l'Intérieur)`;
      const message = await eventually(() =>
        heard.find((m) => m.attrs["from"] === claire && m.getChild("x", NS.oob) !== undefined),
      );
      const url = message.getChild("x", NS.oob)?.getChildText("url") ?? "";
      expect(message.getChildText("body")).toBe(url);
      expect(message.getChild("x", NS.oob)?.getChildText("desc")).toBe("carte.jpg");
      expect(url.startsWith(`${prosody?.httpUrl ?? "?"}/`)).toBe(true);
      const response = await request(url);
      const fetched = Buffer.from(await response.body.arrayBuffer());
      expect(sha256(fetched)).toBe(sha256(bytes));
      expect(response.headers["content-type"]).toContain("image/jpeg");
    });

    it("inbound - a file is described as the type its bytes show, not the one its sender declared", async () => {
      const program = sampleFile("exe", 5000);
      await shareFromXmpp("foto.png", program, "image/png");
      const event = await eventually(() =>
        inbound.find((e) => e.content?.attachments?.some((a) => a.name === "foto.png") === true),
      );
      expect(event.content?.attachments?.[0]).toMatchObject({ mediaType: "application/x-msdownload" });
    });

    it("outbound - bytes that are not the type the event says are not uploaded; the room reads why", async () => {
      // The bus is not trusted: an event may call a program a picture.
      await shareFromTchap("plan.png", sampleFile("exe", 3000), "image/png", "Le plan");
      const message = await eventually(() =>
        heard.find((m) => m.getChildText("body")?.startsWith("Le plan") === true),
      );
      expect(message.getChildText("body")).toContain("[plan.png: not bridged");
      expect(message.getChild("x", NS.oob)).toBeUndefined();
    });

    it("outbound - a file over the bridge's limit is not uploaded; the room reads why, with the text", async () => {
      await shareFromTchap("video.mp4", randomBytes(MAX_BYTES + 1), "video/mp4", "La vidéo de la caméra");
      const message = await eventually(() =>
        heard.find((m) => m.getChildText("body")?.startsWith("La vidéo de la caméra") === true),
      );
      expect(message.getChildText("body")).toContain("[video.mp4: not bridged");
      expect(message.getChild("x", NS.oob)).toBeUndefined();
    });

    /** The stanza error the sender of message `id` receives: its type, condition and text. */
    const stanzaErrorFor = async (
      id: string,
    ): Promise<{ type?: string; condition?: string; text?: string }> => {
      const error = await eventually(() =>
        heard.find((m) => m.attrs["type"] === "error" && m.attrs["id"] === id),
      );
      const element = error.getChild("error");
      return {
        type: element?.attrs["type"],
        condition: element?.children.find((c): c is Element => typeof c !== "string" && c.name !== "text")
          ?.name,
        text: element?.getChildText("text", NS.stanzas) ?? undefined,
      };
    };

    it("SSRF - an occupant's link to a service on loopback is not fetched; the refusal is the same for an open and a closed port", async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise((resolve) => closed.close(resolve));
      const open = `http://127.0.0.1:${String(internalPort)}/admin/export.pdf`;
      const shut = `http://127.0.0.1:${String(closedPort)}/admin/export.pdf`;
      await sendLink("ssrf-open", open);
      await sendLink("ssrf-closed", shut);
      const [toOpen, toClosed] = [await stanzaErrorFor("ssrf-open"), await stanzaErrorFor("ssrf-closed")];
      expect(toOpen).toEqual({
        type: "cancel",
        condition: "not-acceptable",
        text: "Not bridged: a linked file cannot be fetched",
      });
      expect(toClosed).toEqual(toOpen);
      expect(internalAsked).toEqual([]);
      expect(inbound.some((e) => e.content?.attachments?.some((a) => a.url === open || a.url === shut))).toBe(
        false,
      );
    });

    it("bad input - a link to a file the upload service does not have gets the same refusal as a refused host", async () => {
      // Prosody is listed, so asked, and answers 404; port 1 is not, so never asked.
      const missing = `${prosody?.httpUrl ?? "?"}/file_share/no-such-slot/bericht.pdf`;
      const unreachable = "http://127.0.0.1:1/lage.pdf";
      await sendLink("file-missing", missing);
      await sendLink("file-unreachable", unreachable);
      const refusal = {
        type: "cancel",
        condition: "not-acceptable",
        text: "Not bridged: a linked file cannot be fetched",
      };
      expect(await stanzaErrorFor("file-missing")).toEqual(refusal);
      expect(await stanzaErrorFor("file-unreachable")).toEqual(refusal);
      expect(
        inbound.some((e) => e.content?.attachments?.some((a) => a.url === missing || a.url === unreachable)),
      ).toBe(false);
    });

    it("SSRF - a delivery's file on a host the bridge does not list is not fetched, and the room reads why", async () => {
      const attachment: Attachment = {
        name: "export.pdf",
        mediaType: "application/pdf",
        size: 13,
        sha256: sha256(Buffer.from("admin console")),
        url: `http://localhost:${String(internalPort)}/admin/export.pdf`,
      };
      await scene.deliverFromClaire(bus, scene.roomTarget(room), {
        id: `tchap-ssrf-${randomBytes(4).toString("hex")}`,
        type: "message.created",
        content: { body: "Voir le fichier", attachments: [attachment] },
      });
      const message = await eventually(() =>
        heard.find((m) => m.getChildText("body")?.startsWith("Voir le fichier") === true),
      );
      expect(message.getChildText("body")).toContain("[export.pdf: not bridged");
      expect(message.getChild("x", NS.oob)).toBeUndefined();
      expect(internalAsked).toEqual([]);
    });
  },
);
