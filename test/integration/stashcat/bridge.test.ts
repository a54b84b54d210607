/**
 * The Stashcat bridge against the Stashcat-compatible server and a real nats-server: officers' encrypted
 * messages reach the bus as plaintext events, and deliveries appear encrypted in the chat, readable by an
 * officer's client, with every message feature both ways.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { directConversation, directLink } from "../../../schemas/contract/directConversations.js";
import { decodeJson, keyToken } from "../../../gateway/platform/bus/KeyValueStore.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { decryptBytes, encryptBytes, encryptText, newKey } from "../../../bridges/stashcat/crypto.js";
import type { RunningStashcatBridge } from "../../../bridges/stashcat/StashcatBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import { expectSignedLink, sampleFile, serveFile } from "../../helpers/fileServer.js";
import { deliverFromWeber, weber } from "../../helpers/matrixScenes.js";
import {
  einsatz,
  linkChannel,
  MEYER,
  Officer,
  SCHULZ,
  SERVICE_ACCOUNT,
  startStashcatBridge,
  startStashcatScene,
  stashcatTarget,
} from "../../helpers/stashcatScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const logLines: string[] = [];
const log = createLogger("info", "test", {
  write: (line: string) => {
    logLines.push(line);
  },
});
const scene = await startStashcatScene();

describe.skipIf(scene === undefined)("Stashcat bridge - messages both ways", () => {
  const inbound: NormalisedEvent[] = [];
  const deadLetters: string[] = [];
  let bus: JetStreamBus;
  let bridge: RunningStashcatBridge | undefined;
  let meyer: Officer;
  let schulz: Officer;

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await JetStreamBus.connect({ servers: scene.nats.url, log });
    await bus.ensureTopology();
    await collectInbound(bus, inbound);
    await bus.follow("FEDGATE_DEADLETTER", subjects.deadLetterAll, "start", (m) => {
      deadLetters.push(Buffer.from(m.data).toString("utf8"));
    });
    await linkChannel(bus, "einsatz", einsatz);
    // Files above 1 MiB are not carried: the bad-input test sends one.
    bridge = await startStashcatBridge(bus, scene, log, { attachments: { maxBytes: 1024 * 1024 } });
    // Officers log elsewhere: the bridge's log lines are what the tests count.
    meyer = await Officer.login(scene, MEYER, createLogger("silent"));
    schulz = await Officer.login(scene, SCHULZ, createLogger("silent"));
  });

  afterAll(async () => {
    try {
      await bridge?.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  function received(predicate: (e: NormalisedEvent) => boolean, what: string): Promise<NormalisedEvent> {
    return eventually(() => inbound.find(predicate), 20_000, what);
  }

  async function inChannel(
    text: string,
  ): Promise<{ id: number; plain: string; fileIds: number[]; replyTo?: number }> {
    return eventually(
      async () => (await schulz.read(einsatz)).find((m) => m.plain.includes(text)),
      20_000,
      `"${text}" in the channel`,
    );
  }

  it("Stashcat bridge - a channel message reaches the bus as a valid event with the decrypted text, once", async () => {
    const id = await meyer.say(einsatz, "Lage in Hannover ruhig");
    const event = await received((e) => e.source.messageId === String(id), "the message on the bus");
    expect(event).toMatchObject({
      type: "message.created",
      source: { network: "stashcat", instance: "ni", conversation: "channel:1001" },
      sender: { userId: String(MEYER) },
      content: { body: "Lage in Hannover ruhig" },
    });
    expect(event.sender.displayName).toMatch(/Meyer/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.filter((e) => e.source.messageId === String(id))).toHaveLength(1);
  });

  it("Stashcat bridge - a markdown message carries its formatting as the event's HTML", async () => {
    const sealed = encryptText("**Dringend:** Lage _angespannt_", await meyer.chatKey(einsatz));
    const sent = await meyer.client.send(einsatz, {
      text: sealed.text,
      iv: sealed.iv,
      encrypted: true,
      markdown: true,
    });
    expect(
      await received((e) => e.source.messageId === String(sent.id), "the markdown message"),
    ).toMatchObject({
      content: {
        body: "**Dringend:** Lage _angespannt_",
        html: "<p><strong>Dringend:</strong> Lage <em>angespannt</em></p>",
      },
    });
  });

  it("Stashcat bridge - a delivery appears in the channel encrypted, named and readable by an officer", async () => {
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "Wir übernehmen" },
    });
    const message = await inChannel("Wir übernehmen");
    expect(message.plain).toBe("**Kommissarin Weber (Bundespolizei):** Wir übernehmen");
    const raw = (await schulz.client.messages(einsatz, { limit: 50 })).find((m) => m.id === message.id);
    expect(raw?.encrypted).toBe(true);
    expect(raw?.text).not.toContain("übernehmen");
    expect(raw?.markdown).toBe(true);
    // The bridge's own message does not come back to the bus.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.some((e) => e.content?.body?.includes("Wir übernehmen") === true)).toBe(false);
  });

  it("Stashcat bridge - a reply, a like and a deletion go both ways", async () => {
    // Stashcat → bus.
    const original = await meyer.say(einsatz, "Treffpunkt Bahnhof");
    const originalEvent = await received((e) => e.source.messageId === String(original), "the original");
    const reply = await schulz.say(einsatz, "Bin unterwegs", { replyTo: original });
    expect(await received((e) => e.source.messageId === String(reply), "the reply")).toMatchObject({
      relations: { replyTo: originalEvent.id },
    });
    await schulz.client.like(original);
    expect(
      await received(
        (e) => e.type === "reaction.added" && e.relations?.reactsTo === originalEvent.id,
        "the like",
      ),
    ).toMatchObject({ content: { reaction: "👍" } });
    await meyer.client.deleteMessage(original);
    await received(
      (e) => e.type === "message.deleted" && e.relations?.redacts === originalEvent.id,
      "the deletion",
    );

    // Bus → Stashcat.
    const first = await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "Lagebild folgt" },
    });
    const firstInChannel = await inChannel("Lagebild folgt");
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "Hier ist es" },
      relations: { replyTo: first.id },
    });
    expect((await inChannel("Hier ist es")).replyTo).toBe(firstInChannel.id);
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "reaction.added",
      content: { reaction: "✅" },
      relations: { reactsTo: first.id },
    });
    await eventually(
      async () =>
        (await schulz.client.messages(einsatz, { limit: 50 })).find((m) => m.id === firstInChannel.id)
          ?.likes === 1
          ? true
          : undefined,
      20_000,
      "the like in the channel",
    );
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.deleted",
      relations: { redacts: first.id },
    });
    await eventually(
      async () =>
        (await schulz.client.messages(einsatz, { limit: 50 })).find((m) => m.id === firstInChannel.id)
          ?.deleted === true
          ? true
          : undefined,
      20_000,
      "the deletion in the channel",
    );
  });

  it("Stashcat bridge - an officer's like and a manager's deletion of a message from another network reach the other networks", async () => {
    const original = await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "Bitte Eingang bestätigen" },
    });
    const copy = await inChannel("Bitte Eingang bestätigen");
    await schulz.client.like(copy.id);
    expect(
      await received(
        (e) => e.type === "reaction.added" && e.relations?.reactsTo === original.id,
        "Schulz's like of Weber's message",
      ),
    ).toMatchObject({
      source: { network: "stashcat", conversation: "channel:1001" },
      sender: { userId: "likes", displayName: "Stashcat" },
      content: { reaction: "👍" },
    });
    // Meyer manages the channel: he may delete what the bridge posted there.
    await meyer.client.deleteMessage(copy.id);
    expect(
      await received(
        (e) => e.type === "message.deleted" && e.relations?.redacts === original.id,
        "Meyer's deletion of Weber's message",
      ),
    ).toMatchObject({
      source: { network: "stashcat", conversation: "channel:1001" },
      // Stashcat does not say which manager deleted it; no officer is named for it.
      sender: { userId: "moderation" },
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.filter((e) => e.relations?.reactsTo === original.id)).toHaveLength(1);
    expect(inbound.filter((e) => e.relations?.redacts === original.id)).toHaveLength(1);
  });

  it("Stashcat bridge - the likes and deletions the bridge makes for other networks do not come back from Stashcat", async () => {
    // A reaction from elsewhere to an officer's message: the bridge's like stands for it, and is no officer's.
    const id = await meyer.say(einsatz, "Lage unverändert");
    const officers = await received((e) => e.source.messageId === String(id), "Meyer's message");
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "reaction.added",
      content: { reaction: "👀" },
      relations: { reactsTo: officers.id },
    });
    // Weber deletes her own message: the bridge deletes its copy.
    const weberMessage = await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.created",
      content: { body: "Versehentlich gesendet" },
    });
    const copy = await inChannel("Versehentlich gesendet");
    await deliverFromWeber(bus, stashcatTarget(), {
      type: "message.deleted",
      relations: { redacts: weberMessage.id },
    });
    await eventually(
      async () => {
        const messages = await schulz.client.messages(einsatz, { limit: 50 });
        const liked = messages.find((m) => m.id === id)?.likes === 1;
        const deleted = messages.find((m) => m.id === copy.id)?.deleted === true;
        return liked && deleted ? true : undefined;
      },
      20_000,
      "the like and the deletion in the channel",
    );
    // A message after them proves the bridge has read past them.
    const after = await meyer.say(einsatz, "Nachtrag");
    await received((e) => e.source.messageId === String(after), "the message after them");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.filter((e) => e.relations?.reactsTo === officers.id)).toEqual([]);
    expect(inbound.filter((e) => e.relations?.redacts === weberMessage.id)).toEqual([]);
  });

  /** Meyer uploads a file to the channel as Stashcat's clients do: under a file key sealed for the chat. */
  async function uploadSealed(name: string, mediaType: string, bytes: Buffer): Promise<number> {
    const fileKey = newKey();
    const sealed = encryptBytes(bytes, fileKey);
    const fileId = await meyer.client.uploadFile(einsatz, {
      name,
      mediaType,
      data: sealed.data,
      iv: sealed.iv.toString("hex"),
    });
    const wrapped = encryptBytes(fileKey, await meyer.chatKey(einsatz));
    await meyer.client.setFileAccessKey(
      fileId,
      einsatz,
      wrapped.data.toString("hex"),
      wrapped.iv.toString("hex"),
    );
    return fileId;
  }

  it("Stashcat bridge - files go both ways, encrypted with the file-key scheme", async () => {
    // Stashcat → bus: the event's link gives the decrypted bytes.
    const bytes = Buffer.from("%PDF-1.4 Einsatzplan\n".repeat(300));
    const fileId = await uploadSealed("einsatzplan.pdf", "application/pdf", bytes);
    const id = await meyer.say(einsatz, "Der Plan", { fileIds: [fileId] });
    const event = await received((e) => e.source.messageId === String(id), "the file message");
    const [attachment] = event.content?.attachments ?? [];
    expect(attachment).toMatchObject({
      name: "einsatzplan.pdf",
      mediaType: "application/pdf",
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    });
    await expectSignedLink(attachment?.url, bytes);

    // Bus → Stashcat: fetched, encrypted under a new file key, sealed for the chat.
    const image = sampleFile("png", 704);
    const files = await serveFile(image, "image/png");
    try {
      await deliverFromWeber(bus, stashcatTarget(), {
        type: "message.created",
        content: {
          body: "Karte anbei",
          attachments: [files.attachment("karte.png")],
        },
      });
      const posted = await inChannel("Karte anbei");
      const [postedFile] = posted.fileIds;
      expect(postedFile).toBeDefined();
      const info = await schulz.client.fileInfo(postedFile ?? 0);
      expect(info).toMatchObject({ name: "karte.png", encrypted: true });
      const access = info.keys[0];
      if (access === undefined || info.iv === undefined) throw new Error("no file key");
      const key = decryptBytes(
        Buffer.from(access.key, "hex"),
        await schulz.chatKey(einsatz),
        Buffer.from(access.iv, "hex"),
      );
      const data = await schulz.client.download(postedFile ?? 0, 1024 * 1024);
      expect(decryptBytes(data, key, Buffer.from(info.iv, "hex")).equals(image)).toBe(true);
    } finally {
      await files.close();
    }
  });

  it("Stashcat bridge - a file is described as the type its bytes show, not the one its uploader declared", async () => {
    const fileId = await uploadSealed("foto.png", "image/png", sampleFile("exe", 1500));
    const id = await meyer.say(einsatz, "Das Foto", { fileIds: [fileId] });
    const event = await received((e) => e.source.messageId === String(id), "the disguised file");
    expect(event.content?.attachments?.[0]).toMatchObject({
      name: "foto.png",
      mediaType: "application/x-msdownload",
    });
  });

  it("Stashcat bridge - a direct chat opens an encrypted conversation for the officer, and the answer comes back", async () => {
    const conversation = directConversation(String(MEYER), {
      network: "xmpp",
      instance: "bpol",
      userId: weber.userId,
    });
    const meyerOnStashcat = { network: "stashcat", instance: "ni", userId: String(MEYER) };
    // The link, as the XMPP bridge makes it when Weber writes to Meyer's puppet.
    const links = new LinkStore(await bus.keyValue(buckets.links));
    await links.create(
      directLink(
        { network: "xmpp", instance: "bpol", userId: weber.userId },
        "bpol",
        meyerOnStashcat,
        "polizei-ni",
      ),
    );
    await deliverFromWeber(
      bus,
      { network: "stashcat", instance: "ni", conversation, agency: "polizei-ni", kind: "direct" },
      {
        type: "message.created",
        content: { body: "Kurze Frage unter vier Augen" },
        source: {
          network: "xmpp",
          instance: "bpol",
          conversation: directConversation(weber.userId, meyerOnStashcat),
        },
      },
    );
    // The conversation the bridge opened: Meyer finds it by reading it with his own key.
    const state = await bus.keyValue("fedgate_stashcat_state");
    const direct = await eventually(
      async () => {
        const entry = await state.get(`direct.conversation.${keyToken(conversation)}`);
        return entry === undefined ? undefined : (decodeJson(entry.value) as { id: number }).id;
      },
      20_000,
      "the direct conversation",
    );
    // The bridge names the conversation before it posts there: wait for the message, not just the name.
    const said = "**Kommissarin Weber (Bundespolizei):** Kurze Frage unter vier Augen";
    await eventually(
      async () =>
        (await meyer.read({ type: "conversation", id: direct })).some((m) => m.plain === said)
          ? true
          : undefined,
      20_000,
      "Weber's message in the direct conversation",
    );
    const answer = await meyer.say({ type: "conversation", id: direct }, "Ja, rufen Sie an");
    expect(
      await received((e) => e.source.messageId === String(answer), "the answer on the bus"),
    ).toMatchObject({
      source: { conversation },
      content: { body: "Ja, rufen Sie an" },
    });
  });

  it("Stashcat bridge - bad input is refused with a log line and a dead letter, and the bridge keeps serving", async () => {
    const key = await meyer.chatKey(einsatz);
    // Undecryptable: encrypted under another key.
    const foreign = encryptText("Geheim", newKey());
    const undecryptable = (
      await meyer.client.send(einsatz, { text: foreign.text, iv: foreign.iv, encrypted: true })
    ).id;
    // A wrong IV.
    const good = encryptText("Falscher IV", key);
    const wrongIv = (
      await meyer.client.send(einsatz, { text: good.text, iv: "00".repeat(16), encrypted: true })
    ).id;
    // An IV of the wrong length.
    const shortIv = (await meyer.client.send(einsatz, { text: good.text, iv: "abcd", encrypted: true })).id;
    // Too long for the bridge.
    const huge = encryptText("x".repeat(70_000), key);
    const tooLong = (await meyer.client.send(einsatz, { text: huge.text, iv: huge.iv, encrypted: true })).id;

    // A file without a key for the chat: the bridge cannot open it.
    const keyless = encryptBytes(Buffer.from("geheim"), newKey());
    const keylessFile = await meyer.client.uploadFile(einsatz, {
      name: "ohne-schluessel.txt",
      mediaType: "text/plain",
      data: keyless.data,
      iv: keyless.iv.toString("hex"),
    });
    const withoutKey = await meyer.say(einsatz, "Datei ohne Schlüssel", { fileIds: [keylessFile] });
    // A file larger than the bridge carries.
    const bigKey = newKey();
    const big = encryptBytes(Buffer.alloc(1024 * 1024 + 1, 7), bigKey);
    const bigFile = await meyer.client.uploadFile(einsatz, {
      name: "gross.bin",
      mediaType: "application/octet-stream",
      data: big.data,
      iv: big.iv.toString("hex"),
    });
    const bigSealed = encryptBytes(bigKey, key);
    await meyer.client.setFileAccessKey(
      bigFile,
      einsatz,
      bigSealed.data.toString("hex"),
      bigSealed.iv.toString("hex"),
    );
    const tooLarge = await meyer.say(einsatz, "Zu groß", { fileIds: [bigFile] });
    // An entry of a kind the bridge does not know, pushed as a newer Stashcat might.
    scene?.server.pushRaw(SERVICE_ACCOUNT, "message_sync", {
      id: 99_001,
      kind: "call",
      channel_id: 1001,
      conversation_id: 0,
      sender: { id: String(MEYER), first_name: "Hans", last_name: "Meyer" },
      time: String(Math.floor(Date.now() / 1000)),
      text: "",
      encrypted: false,
    });

    const after = await meyer.say(einsatz, "Und weiter geht's");
    await received((e) => e.source.messageId === String(after), "a good message after the bad ones");
    for (const id of [undecryptable, wrongIv, shortIv, tooLong, withoutKey, tooLarge, 99_001]) {
      expect(inbound.some((e) => e.source.messageId === String(id))).toBe(false);
      const letter = await eventually(
        () =>
          deadLetters.find((l) => {
            const { payload } = JSON.parse(l) as { payload: string };
            return (JSON.parse(payload) as { id?: unknown }).id === id;
          }),
        10_000,
        `the dead letter of ${String(id)}`,
      );
      expect(letter).toMatch(/FG_DECRYPTION_FAILED|FG_NATIVE_INVALID|FG_ATTACHMENT_INVALID/);
      // The plaintext never goes into a dead letter.
      expect(letter).not.toContain("Geheim");
    }
    expect(
      logLines.some((l) => l.includes("FG_DECRYPTION_FAILED") && l.includes("Stashcat message refused")),
    ).toBe(true);
    // A refused entry's id (the unknown kind's is far ahead) does not move the catch-up past real messages.
    scene?.server.dropPushConnections();
    const whileAway = await meyer.say(einsatz, "Während die Verbindung fehlt");
    await received(
      (e) => e.source.messageId === String(whileAway),
      "the message sent while the push was down",
    );
  });
});
