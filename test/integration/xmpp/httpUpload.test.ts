/**
 * HTTP File Upload (XEP-0363) against a real Prosody: the bridge's component finds the upload service,
 * gets slots as a puppet, uploads, and the kit describes and fetches what is there; a native user's upload
 * is described the same way.
 */
import { createHash, randomBytes } from "node:crypto";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeAttachment, fetchAttachment } from "../../../bridges/kit/fetchAttachment.js";
import {
  discoverUploadService,
  requestSlot,
  upload,
  type IqRequester,
} from "../../../bridges/xmpp/httpUpload.js";
import { XmppComponent } from "../../../bridges/xmpp/XmppComponent.js";
import { FedgateError, TransientError } from "../../../schemas/contract/errors.js";
import {
  startProsodyOrSkip,
  stopClient,
  xml,
  xmppClient,
  type Element,
  type XmppClient,
} from "../../helpers/prosody.js";
import { uploadAsClient } from "../../helpers/xmppScenes.js";

const prosody = await startProsodyOrSkip();

/** LocalProsody's http_file_share_size_limit. */
const SIZE_LIMIT = 10 * 1024 * 1024;

async function failure(promise: Promise<unknown>): Promise<FedgateError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(FedgateError);
  return error as FedgateError;
}

describe.skipIf(prosody === undefined)("HTTP File Upload with Prosody's http_file_share", () => {
  const server = prosody as NonNullable<typeof prosody>;
  const puppet = `someone@${server.componentDomain}/fedgate`;
  const component = new XmppComponent({
    service: server.componentUrl,
    domain: server.componentDomain,
    secret: server.componentSecret,
    log: pino({ level: "silent" }),
  });
  let alice: XmppClient | undefined;

  beforeAll(async () => {
    await component.start();
  });

  afterAll(async () => {
    await stopClient(alice);
    await component.stop();
    await server.stop();
  });

  it("discovers upload.<domain> and its size limit from the server's disco#items", async () => {
    expect(await discoverUploadService(component, server.componentDomain, server.domain)).toEqual({
      jid: server.uploadDomain,
      maxFileSize: SIZE_LIMIT,
    });
  });

  it("a puppet of the component gets a slot, uploads, and the kit describes and fetches the same bytes", async () => {
    // A PDF's signature first: the kit describes a file with the type its bytes show.
    const bytes = Buffer.concat([Buffer.from("%PDF-1.7\n"), randomBytes(300_000)]);
    const slot = await requestSlot(component, {
      service: server.uploadDomain,
      from: puppet,
      // The slash would make Prosody refuse the name; requestSlot replaces it.
      filename: "Lagebild März/Nord.pdf",
      size: bytes.length,
      contentType: "application/pdf",
    });
    expect(slot.get.startsWith(`${server.httpUrl}/file_share/`)).toBe(true);
    // Prosody authorises the PUT with a bearer token, the only header it prescribes.
    expect(Object.keys(slot.put.headers)).toEqual(["Authorization"]);

    await upload(slot, bytes, "application/pdf");

    // Prosody listens on loopback: the bridge fetches from it because its config lists it.
    const fromProsody = { maxBytes: SIZE_LIMIT, hosts: { trusted: [server.httpUrl] } };
    const described = await describeAttachment(slot.get, fromProsody);
    expect(described).toEqual({
      name: "Lagebild März_Nord.pdf",
      mediaType: "application/pdf",
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      url: slot.get,
    });
    // Unlisted, a server on loopback is not fetched from.
    await expect(describeAttachment(slot.get, { maxBytes: SIZE_LIMIT })).rejects.toMatchObject({
      code: "FG_ATTACHMENT_INVALID",
      detail: { refused: true },
    });
    expect((await fetchAttachment(described, fromProsody)).equals(bytes)).toBe(true);
  });

  it("a slot for a file above the limit is refused as permanent, with the server's limit", async () => {
    const error = await failure(
      requestSlot(component, {
        service: server.uploadDomain,
        from: puppet,
        filename: "big.bin",
        size: SIZE_LIMIT + 1,
        contentType: "application/octet-stream",
      }),
    );
    expect(error).toMatchObject({
      code: "FG_ATTACHMENT_INVALID",
      transient: false,
      detail: { maxFileSize: SIZE_LIMIT, condition: "not-acceptable" },
    });
  });

  it("past the daily quota, which unused slots count against too, a slot is refused as transient", async () => {
    // Prosody's default quota is ten times the size limit per bare JID and day.
    const quotaPuppet = `quota@${server.componentDomain}/fedgate`;
    const ask = (filename: string) =>
      requestSlot(component, {
        service: server.uploadDomain,
        from: quotaPuppet,
        filename,
        size: SIZE_LIMIT,
        contentType: "application/octet-stream",
      });
    for (let index = 0; index < 10; index++) await ask(`part${index}.bin`);
    const error = await failure(ask("one-too-many.bin"));
    expect(error).toMatchObject({
      code: "FG_PEER_UNAVAILABLE",
      transient: true,
      detail: { condition: "resource-constraint" },
    });
    // Another puppet has its own quota.
    await requestSlot(component, {
      service: server.uploadDomain,
      from: puppet,
      filename: "small.bin",
      size: 1,
      contentType: "application/octet-stream",
    });
  });

  it("bytes that are not the size the slot was asked for are refused as permanent", async () => {
    const slot = await requestSlot(component, {
      service: server.uploadDomain,
      from: puppet,
      filename: "short.txt",
      size: 10,
      contentType: "text/plain",
    });
    const error = await failure(upload(slot, Buffer.from("eleven byte"), "text/plain"));
    expect(error).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false, detail: { status: 413 } });
    expect(error.message).not.toContain(new URL(slot.put.url).pathname);
  });

  it("a native user's upload can be described by the bridge", async () => {
    await server.addUser("alice", "geheim");
    alice = xmppClient(server, "alice", "geheim", "upload");
    await alice.start();
    const bytes = Buffer.from("Lagebericht: alles ruhig\n");
    const { status, url } = await uploadAsClient(alice, server.uploadDomain, {
      name: "lage.txt",
      bytes,
      type: "text/plain; charset=utf-8",
    });
    expect(status).toBe(201);

    expect(await describeAttachment(url, { maxBytes: 1024, hosts: { trusted: [server.httpUrl] } })).toEqual({
      name: "lage.txt",
      // Prosody serves the type the client declared; the kit keeps its essence only.
      mediaType: "text/plain",
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      url,
    });
  });
});

describe("HTTP File Upload - how refusals and silence are read", () => {
  /** The error XmppComponent.request throws for an error reply: a TransientError around the stanza error. */
  function stanzaError(condition: string, type: string): TransientError {
    const cause = Object.assign(new Error(condition), {
      condition,
      type,
      text: "",
      element: xml("error", { type }, xml(condition, { xmlns: "urn:ietf:params:xml:ns:xmpp-stanzas" })),
    });
    return new TransientError("FG_PEER_UNAVAILABLE", `XMPP request failed: ${String(cause)}`, { cause });
  }
  const refusing = (error: Error): IqRequester => ({ request: () => Promise.reject(error) });
  const slotRequest = {
    service: "upload.example",
    from: "someone@bridge.example/fedgate",
    filename: "a.txt",
    size: 1,
    contentType: "text/plain",
  };

  it("maps the server's refusals to typed errors", async () => {
    const forbidden = await failure(requestSlot(refusing(stanzaError("forbidden", "auth")), slotRequest));
    expect(forbidden).toMatchObject({ code: "FG_PEER_REFUSED", transient: false });
    const badName = await failure(requestSlot(refusing(stanzaError("bad-request", "modify")), slotRequest));
    expect(badName).toMatchObject({ code: "FG_ATTACHMENT_INVALID", transient: false });
    const broken = await failure(
      requestSlot(refusing(stanzaError("internal-server-error", "cancel")), slotRequest),
    );
    expect(broken).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true });
    const silent = new TransientError("FG_PEER_UNAVAILABLE", "XMPP request failed: TimeoutError");
    expect(await failure(requestSlot(refusing(silent), slotRequest))).toBe(silent);
  });

  it("does not conclude there is no upload service while a service has not answered", async () => {
    const items = xml(
      "iq",
      { type: "result" },
      xml(
        "query",
        { xmlns: "http://jabber.org/protocol/disco#items" },
        xml("item", { jid: "upload.example" }),
      ),
    );
    const noInfo = xml(
      "iq",
      { type: "result" },
      xml("query", { xmlns: "http://jabber.org/protocol/disco#info" }),
    );
    const answer = (uploadAnswers: () => Promise<Element>): IqRequester => ({
      request: (iq) =>
        iq.getChild("query", "http://jabber.org/protocol/disco#items") !== undefined
          ? Promise.resolve(items)
          : iq.attrs["to"] === "upload.example"
            ? uploadAnswers()
            : Promise.resolve(noInfo),
    });
    const timedOut = new TransientError("FG_PEER_UNAVAILABLE", "XMPP request failed: TimeoutError");
    const error = await failure(
      discoverUploadService(
        answer(() => Promise.reject(timedOut)),
        "bridge.example",
        "example",
      ),
    );
    expect(error).toMatchObject({ code: "FG_PEER_UNAVAILABLE", transient: true });
    // A definite "no" from every entity means there is none.
    await expect(
      discoverUploadService(
        answer(() => Promise.reject(stanzaError("service-unavailable", "cancel"))),
        "bridge.example",
        "example",
      ),
    ).resolves.toBeUndefined();
  });
});
