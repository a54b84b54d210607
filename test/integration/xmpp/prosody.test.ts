/**
 * The XMPP test server itself: what the bridge's tests rely on — PLAIN logins, instant persistent rooms
 * that stamp and archive messages, restarts that keep everything, the component port and HTTP upload.
 */
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

const NS_MUC = "http://jabber.org/protocol/muc";
const NS_MUC_USER = "http://jabber.org/protocol/muc#user";
const NS_SID = "urn:xmpp:sid:0";
const NS_MAM = "urn:xmpp:mam:2";
const NS_FORWARD = "urn:xmpp:forward:0";
const NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items";
const NS_UPLOAD = "urn:xmpp:http:upload:0";

/** @xmpp/component is CommonJS without type declarations; this is the part the test uses. */
interface ComponentEntity {
  status: string;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  send(element: Element): Promise<void>;
  on(event: "stanza", listener: (element: Element) => void): void;
  on(event: "error", listener: (error: Error & { condition?: string }) => void): void;
  reconnect: { stop(): void };
}
const require = createRequire(import.meta.url);
const componentLibrary = require("@xmpp/component") as {
  component(options: { service: string; domain: string; password: string }): ComponentEntity;
  xml: typeof xml;
};

/** Resolves with the first stanza that matches; listen before sending what provokes it. */
function nextStanza(
  entity: Pick<XmppClient, "on" | "removeListener"> | ComponentEntity,
  matches: (stanza: Element) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<Element> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    const listener = (stanza: Element): void => {
      if (!matches(stanza)) return;
      clearTimeout(timer);
      if ("removeListener" in entity) entity.removeListener("stanza", listener);
      resolve(stanza);
    };
    entity.on("stanza", listener);
  });
}

/** The room's own presence for `nick`, which ends a join (XEP-0045 status 110). */
const isSelfPresence = (room: string, nick: string) => (stanza: Element) =>
  stanza.is("presence") &&
  stanza.attrs["from"] === `${room}/${nick}` &&
  stanza.attrs["type"] !== "error" &&
  (stanza
    .getChild("x", NS_MUC_USER)
    ?.getChildren("status")
    .some((status) => status.attrs["code"] === "110") ??
    false);

async function join(entity: XmppClient, room: string, nick: string): Promise<Element> {
  const joined = nextStanza(
    entity,
    (s) => isSelfPresence(room, nick)(s) || (s.is("presence") && s.attrs["type"] === "error"),
    `joining ${room} as ${nick}`,
  );
  await entity.send(xml("presence", { to: `${room}/${nick}` }, xml("x", { xmlns: NS_MUC })));
  const presence = await joined;
  if (presence.attrs["type"] === "error") throw new Error(`join refused: ${presence.toString()}`);
  return presence;
}

describe.skipIf(prosody === undefined)("LocalProsody - a real XMPP server for the bridge's tests", () => {
  const server = prosody as NonNullable<typeof prosody>;
  const room = `lage@${server.mucDomain}`;
  const clients: XmppClient[] = [];
  const components: ComponentEntity[] = [];
  let sent: { body: string; stanzaId: string } | undefined;

  async function online(localpart: string, resource?: string): Promise<XmppClient> {
    const entity = xmppClient(server, localpart, "geheim", resource);
    clients.push(entity);
    await entity.start();
    return entity;
  }

  beforeAll(async () => {
    expect(await server.addUser("alice", "geheim")).toBe(`alice@${server.domain}`);
    await server.addUser("bob", "geheim");
    // Registering again only resets the password.
    await server.addUser("bob", "geheim");
  });

  afterAll(async () => {
    for (const entity of clients) await stopClient(entity);
    for (const entity of components) {
      entity.reconnect.stop();
      if (entity.status !== "offline") await entity.stop().catch(() => undefined);
    }
    await server.stop();
  });

  it("MUC - two users log in with PLAIN, join an instant room, and messages carry the room's stanza-id", async () => {
    const alice = await online("alice");
    const bob = await online("bob");

    const created = await join(alice, room, "Alice");
    // Status 201: the room was created by this join; no owner form was needed for Bob to get in.
    expect(
      created
        .getChild("x", NS_MUC_USER)
        ?.getChildren("status")
        .map((s) => s.attrs["code"]),
    ).toContain("201");
    await join(bob, room, "Bob");

    const body = `Lagebild ${Date.now()}`;
    const received = nextStanza(
      bob,
      (s) => s.is("message") && s.attrs["type"] === "groupchat" && s.getChildText("body") === body,
      "the groupchat message at Bob",
    );
    await alice.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, body)));
    const message = await received;

    expect(message.attrs["from"]).toBe(`${room}/Alice`);
    const stanzaId = message.getChild("stanza-id", NS_SID);
    expect(stanzaId?.attrs["by"]).toBe(room);
    expect(stanzaId?.attrs["id"]).toMatch(/.+/);
    sent = { body, stanzaId: stanzaId?.attrs["id"] ?? "" };
  });

  it("restart - keeps accounts, the room and its archive (MAM)", async () => {
    expect(sent).toBeDefined();
    for (const entity of clients.splice(0)) await stopClient(entity);

    await server.restart();

    const alice = await online("alice", "after-restart");
    const bob = await online("bob", "after-restart");
    // The room survived without occupants: disco#info on it answers instead of item-not-found.
    const info = await bob.iqCaller.request(
      xml("iq", { type: "get", to: room }, xml("query", { xmlns: NS_DISCO_INFO })),
    );
    expect(
      info
        .getChild("query", NS_DISCO_INFO)
        ?.getChildren("feature")
        .map((f) => f.attrs["var"]),
    ).toEqual(expect.arrayContaining(["muc_persistent", "muc_public", NS_MAM]));

    // A non-occupant may query a public room's archive: what the bridge needs to back-fill.
    const results: Element[] = [];
    const collect = (stanza: Element): void => {
      const result = stanza.getChild("result", NS_MAM);
      if (stanza.is("message") && result?.attrs["queryid"] === "q1") results.push(result);
    };
    alice.on("stanza", collect);
    const fin = await alice.iqCaller.request(
      xml("iq", { type: "set", to: room }, xml("query", { xmlns: NS_MAM, queryid: "q1" })),
    );
    alice.removeListener("stanza", collect);

    expect(fin.getChild("fin", NS_MAM)?.attrs["complete"]).toBe("true");
    const archived = results.map((result) => ({
      id: result.attrs["id"],
      body: result.getChild("forwarded", NS_FORWARD)?.getChild("message")?.getChildText("body"),
    }));
    expect(archived).toContainEqual({ id: sent?.stanzaId, body: sent?.body });
  });

  it("component - the bridge connects with its secret, joins a room, and a wrong secret is refused", async () => {
    const bridge = componentLibrary.component({
      service: server.componentUrl,
      domain: server.componentDomain,
      password: server.componentSecret,
    });
    components.push(bridge);
    bridge.on("error", () => undefined);
    await bridge.start();
    expect(bridge.status).toBe("online");

    // The bridge speaks for users of its own domain, e.g. puppets of Matrix or Stashcat accounts.
    const puppet = `relay@${server.componentDomain}`;
    const joined = nextStanza(
      bridge,
      (s) => isSelfPresence(room, "Relay")(s) || (s.is("presence") && s.attrs["type"] === "error"),
      "the bridge's join",
    );
    await bridge.send(
      componentLibrary.xml(
        "presence",
        { from: puppet, to: `${room}/Relay` },
        componentLibrary.xml("x", { xmlns: NS_MUC }),
      ),
    );
    expect((await joined).attrs["type"]).toBeUndefined();

    const impostor = componentLibrary.component({
      service: server.componentUrl,
      domain: server.componentDomain,
      password: "wrong-secret",
    });
    components.push(impostor);
    const errors: (Error & { condition?: string })[] = [];
    impostor.on("error", (error) => errors.push(error));
    await expect(impostor.start()).rejects.toMatchObject({ condition: "not-authorized" });
    impostor.reconnect.stop();
    expect(errors.map((e) => e.condition)).toContain("not-authorized");
    // The rightful component stays connected.
    expect(bridge.status).toBe("online");
  });

  it("upload - the HTTP upload service is discoverable and serves an uploaded file", async () => {
    const alice = await online("alice", "upload");
    const items = await alice.iqCaller.request(
      xml("iq", { type: "get", to: server.domain }, xml("query", { xmlns: NS_DISCO_ITEMS })),
    );
    const jids = items
      .getChild("query", NS_DISCO_ITEMS)
      ?.getChildren("item")
      .map((item) => item.attrs["jid"]);
    expect(jids).toContain(server.uploadDomain);

    const info = await alice.iqCaller.request(
      xml("iq", { type: "get", to: server.uploadDomain }, xml("query", { xmlns: NS_DISCO_INFO })),
    );
    const features = info
      .getChild("query", NS_DISCO_INFO)
      ?.getChildren("feature")
      .map((f) => f.attrs["var"]);
    expect(features).toContain(NS_UPLOAD);

    const content = Buffer.from("Lagebericht: alles ruhig\n");
    const upload = await uploadAsClient(alice, server.uploadDomain, {
      name: "lage.txt",
      bytes: content,
      type: "text/plain",
    });
    expect(upload.url.startsWith(`${server.httpUrl}/file_share/`)).toBe(true);
    expect(upload.status).toBe(201);
    const download = await fetch(upload.url);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer())).toEqual(content);
  });
});
