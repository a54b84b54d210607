/**
 * The Matrix bridge against a real Synapse and nats-server: a French official's messages reach the bus as
 * valid events, and German officers' deliveries appear in the room from their ghosts, with every message
 * feature both ways.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "undici";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { subjects } from "../../../schemas/contract/subjects.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { ghostUserId } from "../../../bridges/matrix/ghosts.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import { expectSignedLink, sampleFile, serveFile } from "../../helpers/fileServer.js";
import {
  connectBus,
  contentOf,
  deliverFromWeber,
  type Json,
  linkedRoom,
  Official,
  startMatrixBridge,
  startMatrixScene,
  tchapRoom,
  weberGhost,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const log = createLogger("silent");
const scene = await startMatrixScene();

describe.skipIf(scene === undefined)("Matrix bridge - messages both ways", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let claire: Official;
  let room = "";

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    bridge = await startMatrixBridge(bus, scene, log);
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
    room = await linkedRoom(scene, bus, claire, "einsatz");
  });

  afterAll(async () => {
    // The servers stop even when the set-up failed half-way.
    try {
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  function received(predicate: (e: NormalisedEvent) => boolean, what: string): Promise<NormalisedEvent> {
    return eventually(() => inbound.find(predicate), 20_000, what);
  }

  it("Matrix bridge - a room message with formatting reaches the bus as a valid event, once", async () => {
    const eventId = await claire.send(room, {
      msgtype: "m.text",
      body: "Lagebesprechung um 14 Uhr",
      format: "org.matrix.custom.html",
      formatted_body: "<b>Lagebesprechung</b> um 14 Uhr<script>alert(1)</script>",
    });
    const event = await received((e) => e.source.messageId === eventId, "the message on the bus");
    expect(event).toMatchObject({
      type: "message.created",
      source: { network: "matrix", instance: "tchap", conversation: room },
      sender: { userId: claire.userId, displayName: "Claire Martin" },
      content: { body: "Lagebesprechung um 14 Uhr", html: "<b>Lagebesprechung</b> um 14 Uhr" },
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.filter((e) => e.source.messageId === eventId)).toHaveLength(1);
  });

  it("Matrix bridge - a delivery appears in the room from the sender's ghost, named with the agency", async () => {
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "Verstanden, wir kommen" },
    });
    const [message] = await eventually(
      async () => {
        const found = await claire.eventsFrom(room, weberGhost);
        return found.length > 0 ? found : undefined;
      },
      20_000,
      "Weber's message in the room",
    );
    expect(contentOf(message)).toMatchObject({ msgtype: "m.text", body: "Verstanden, wir kommen" });
    expect(await claire.displayName(weberGhost)).toBe("Kommissarin Weber (Bundespolizei)");
    // Nothing the ghost says comes back to the bus.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(inbound.some((e) => e.sender.userId === weberGhost)).toBe(false);
  });

  it("Matrix bridge - a reply, an edit, a reaction and a redaction from Tchap reach the bus", async () => {
    const original = await claire.say(room, "Treffpunkt Grenzübergang");
    const originalEvent = await received((e) => e.source.messageId === original, "the original");
    const reply = await claire.send(room, {
      msgtype: "m.text",
      body: "> <@claire.martin:tchap.localhost> Treffpunkt Grenzübergang\n\nUm 15 Uhr",
      "m.relates_to": { "m.in_reply_to": { event_id: original } },
    });
    expect(await received((e) => e.source.messageId === reply, "the reply")).toMatchObject({
      content: { body: "Um 15 Uhr" },
      relations: { replyTo: originalEvent.id },
    });
    await claire.send(room, {
      msgtype: "m.text",
      body: "* Treffpunkt Grenzübergang Nord",
      "m.new_content": { msgtype: "m.text", body: "Treffpunkt Grenzübergang Nord" },
      "m.relates_to": { rel_type: "m.replace", event_id: original },
    });
    expect(
      await received(
        (e) => e.type === "message.edited" && e.relations?.replaces === originalEvent.id,
        "the edit",
      ),
    ).toMatchObject({ content: { body: "Treffpunkt Grenzübergang Nord" } });
    const reaction = await claire.send(
      room,
      { "m.relates_to": { rel_type: "m.annotation", event_id: original, key: "👍" } },
      "m.reaction",
    );
    expect(
      await received(
        (e) => e.type === "reaction.added" && e.relations?.reactsTo === originalEvent.id,
        "the reaction",
      ),
    ).toMatchObject({ content: { reaction: "👍" } });
    await claire.redact(room, reaction);
    expect(
      await received(
        (e) => e.type === "reaction.removed" && e.relations?.reactsTo === originalEvent.id,
        "the reaction taken back",
      ),
    ).toMatchObject({ content: { reaction: "👍" }, sender: { userId: claire.userId } });
    await claire.redact(room, original);
    await received(
      (e) => e.type === "message.deleted" && e.relations?.redacts === originalEvent.id,
      "the deletion",
    );
  });

  it("Matrix bridge - a reply, an edit, a reaction and a deletion from XMPP appear in the room", async () => {
    const first = await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "Lage unverändert" },
    });
    const firstInRoom = await eventually(
      async () =>
        (await claire.eventsFrom(room, weberGhost)).find((e) => contentOf(e)["body"] === "Lage unverändert"),
      20_000,
      "the first message",
    );
    const target = String(firstInRoom["event_id"]);
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "Ergänzung folgt" },
      relations: { replyTo: first.id },
    });
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.edited",
      content: { body: "Lage angespannt" },
      relations: { replaces: first.id },
    });
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "reaction.added",
      content: { reaction: "✅" },
      relations: { reactsTo: first.id },
    });
    const timeline = await eventually(
      async () => {
        const events = await claire.timeline(room);
        return events.some((e) => e["type"] === "m.reaction" && e["sender"] === weberGhost)
          ? events
          : undefined;
      },
      20_000,
      "the reaction",
    );
    const fromWeber = timeline.filter((e) => e["sender"] === weberGhost);
    const reply = fromWeber.find((e) => contentOf(e)["body"] === "Ergänzung folgt");
    expect(contentOf(reply)["m.relates_to"]).toEqual({ "m.in_reply_to": { event_id: target } });
    const edit = fromWeber.find(
      (e) => (contentOf(e)["m.relates_to"] as { rel_type?: string } | undefined)?.rel_type === "m.replace",
    );
    expect(contentOf(edit)).toMatchObject({
      "m.new_content": { body: "Lage angespannt" },
      "m.relates_to": { rel_type: "m.replace", event_id: target },
    });
    const reaction = fromWeber.find((e) => e["type"] === "m.reaction");
    expect(contentOf(reaction)["m.relates_to"]).toEqual({
      rel_type: "m.annotation",
      event_id: target,
      key: "✅",
    });

    await deliverFromWeber(bus, tchapRoom(room), {
      type: "reaction.removed",
      content: { reaction: "✅" },
      relations: { reactsTo: first.id },
    });
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.deleted",
      relations: { redacts: first.id },
    });
    await eventually(
      async () => {
        const events = await claire.timeline(room);
        const redacted = (id: unknown): boolean =>
          events.some((e) => e["type"] === "m.room.redaction" && e["redacts"] === id);
        return redacted(target) && redacted(reaction?.["event_id"]) ? true : undefined;
      },
      20_000,
      "the reaction and the message redacted",
    );
  });

  it("Matrix bridge - members joining and leaving are bridged; a ghost leaves when its person leaves", async () => {
    if (scene === undefined) return;
    const bob = await Official.register(scene.synapse, "bob.durand", "Bob Durand");
    await claire.invite(room, bob.userId);
    await bob.join(room);
    expect(
      await received((e) => e.type === "member.joined" && e.sender.userId === bob.userId, "Bob joining"),
    ).toMatchObject({ sender: { displayName: "Bob Durand" } });
    await bob.call("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/leave`);
    await received((e) => e.type === "member.left" && e.sender.userId === bob.userId, "Bob leaving");

    await deliverFromWeber(bus, tchapRoom(room), { type: "member.left" });
    await eventually(
      async () =>
        (await claire.timeline(room)).some(
          (e) =>
            e["type"] === "m.room.member" &&
            e["state_key"] === weberGhost &&
            contentOf(e)["membership"] === "leave",
        )
          ? true
          : undefined,
      20_000,
      "Weber's ghost leaving",
    );
    // Speaking again brings the ghost back.
    await deliverFromWeber(bus, tchapRoom(room), { type: "message.created", content: { body: "Wieder da" } });
    await eventually(
      async () =>
        (await claire.eventsFrom(room, weberGhost)).find((e) => contentOf(e)["body"] === "Wieder da"),
      20_000,
      "Weber back in the room",
    );
    // Kicked by a moderator, the ghost is invited back by the bot when its person speaks again.
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(room)}`;
    await claire.call("POST", `${path}/kick`, { user_id: weberGhost, reason: "test" });
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "Nach dem Kick" },
    });
    await eventually(
      async () =>
        (await claire.eventsFrom(room, weberGhost)).find((e) => contentOf(e)["body"] === "Nach dem Kick"),
      20_000,
      "Weber back after a kick",
    );
    // Banned, it stays out: the room's policy, so the delivery is dead-lettered with the reason, not retried.
    const deadLetters: string[] = [];
    await bus.follow("FEDGATE_DEADLETTER", subjects.deadLetterAll, "start", (m) => {
      deadLetters.push(Buffer.from(m.data).toString("utf8"));
    });
    await claire.call("POST", `${path}/ban`, { user_id: weberGhost, reason: "test" });
    const banned = await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "Nach dem Bann" },
    });
    const letter = await eventually(
      () => deadLetters.find((l) => l.includes(banned.id)),
      20_000,
      "the delivery dead-lettered",
    );
    expect(letter).toContain("FG_PEER_REFUSED");
    const posted = await claire.eventsFrom(room, weberGhost);
    expect(posted.some((e) => contentOf(e)["body"] === "Nach dem Bann")).toBe(false);
    await claire.call("POST", `${path}/unban`, { user_id: weberGhost });
  });

  it("Matrix bridge - files go both ways through the homeserver's authenticated media", async () => {
    // Tchap → bus: the event's link is served by the bridge and gives the bytes back.
    const bytes = Buffer.from("%PDF-1.4 Lagebild\n".repeat(200));
    const mxc = await claire.upload(bytes, "application/pdf", "lagebild.pdf");
    const sent = await claire.send(room, {
      msgtype: "m.file",
      body: "lagebild.pdf",
      url: mxc,
      info: { mimetype: "application/pdf", size: bytes.length },
    });
    const event = await received((e) => e.source.messageId === sent, "the file on the bus");
    const [attachment] = event.content?.attachments ?? [];
    expect(attachment).toMatchObject({
      name: "lagebild.pdf",
      mediaType: "application/pdf",
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
    });
    await expectSignedLink(attachment?.url, bytes);

    // XMPP → Tchap: the file is fetched, uploaded as the ghost, and posted as an image.
    const image = sampleFile("png", 504);
    const files = await serveFile(image, "image/png");
    try {
      await deliverFromWeber(bus, tchapRoom(room), {
        type: "message.created",
        content: {
          attachments: [files.attachment("karte.png")],
        },
      });
      const posted = await eventually(
        async () =>
          (await claire.eventsFrom(room, weberGhost)).find((e) => contentOf(e)["msgtype"] === "m.image"),
        20_000,
        "the image in the room",
      );
      expect(contentOf(posted)).toMatchObject({
        body: "karte.png",
        info: { mimetype: "image/png", size: image.length },
      });
      expect((await claire.download(String(contentOf(posted)["url"]))).equals(image)).toBe(true);
    } finally {
      await files.close();
    }
  });

  it("Matrix bridge - an image whose bytes are a program reaches the bus as the program it is", async () => {
    const program = sampleFile("exe", 2000, 3);
    // The homeserver serves the type the upload named; the message claims a picture.
    const mxc = await claire.upload(program, "application/x-msdownload", "foto.png");
    const sent = await claire.send(room, {
      msgtype: "m.image",
      body: "foto.png",
      url: mxc,
      info: { mimetype: "image/png", size: program.length },
    });
    const event = await received((e) => e.source.messageId === sent, "the image on the bus");
    expect(event.content?.attachments?.[0]).toMatchObject({
      name: "foto.png",
      mediaType: "application/x-msdownload",
      size: program.length,
    });
    // Served as a picture, by a homeserver that repeats what the uploader said, it is still what it is.
    const disguised = await claire.upload(program, "image/png", "bild.png");
    const again = await claire.send(room, {
      msgtype: "m.image",
      body: "bild.png",
      url: disguised,
      info: { mimetype: "image/png", size: program.length },
    });
    const second = await received((e) => e.source.messageId === again, "the disguised image on the bus");
    expect(second.content?.attachments?.[0]?.mediaType).toBe("application/x-msdownload");
  });

  it("Matrix bridge - people's pictures go both ways: an official's as a link, a remote person's on the ghost", async () => {
    // Tchap → bus: the official's picture is a link the bridge serves.
    const picture = Buffer.from([
      0x89,
      0x50,
      0x4e,
      0x47,
      ...Array.from({ length: 300 }, (_, i) => (i * 7) % 256),
    ]);
    const mxc = await claire.upload(picture, "image/png", "claire.png");
    await claire.call("PUT", `/_matrix/client/v3/profile/${encodeURIComponent(claire.userId)}/avatar_url`, {
      avatar_url: mxc,
    });
    // The homeserver tells the room of the new picture; the next message carries it.
    await eventually(
      async () =>
        (await claire.timeline(room)).some(
          (e) => e["type"] === "m.room.member" && contentOf(e)["avatar_url"] === mxc,
        )
          ? true
          : undefined,
      20_000,
      "the new picture in the room",
    );
    const said = await claire.say(room, "Mit Bild");
    const event = await received((e) => e.source.messageId === said, "the message with a picture");
    const avatarUrl = event.sender.avatarUrl ?? "";
    expect(avatarUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/_fedgate\/media\/v1\//);
    const fetched = await request(avatarUrl);
    expect(Buffer.from(await fetched.body.arrayBuffer()).equals(picture)).toBe(true);

    // XMPP → Tchap: the remote person's picture becomes the ghost's.
    const photo = Buffer.from([0xff, 0xd8, 0xff, ...Array.from({ length: 400 }, (_, i) => (i * 3) % 256)]);
    const photos = await serveFile(photo, "image/jpeg");
    try {
      const schulz = {
        userId: "schulz@bpol.localhost",
        displayName: "PHK Schulz",
        avatarUrl: photos.url("schulz.jpg"),
      };
      await deliverFromWeber(bus, tchapRoom(room), {
        type: "message.created",
        content: { body: "Schulz hier" },
        sender: schulz,
      });
      const ghost = ghostUserId(
        { prefix: "fedgate_", serverName: "tchap.localhost" },
        { network: "xmpp", instance: "bpol", userId: schulz.userId },
      );
      const avatar = await eventually(
        async () => {
          // Until the bridge has registered the ghost, the homeserver has no profile for it (404).
          const profile = await claire
            .call("GET", `/_matrix/client/v3/profile/${encodeURIComponent(ghost)}`)
            .catch((error: unknown) => {
              if (error instanceof Error && error.message.includes(" 404 ")) return undefined;
              throw error;
            });
          return typeof profile?.["avatar_url"] === "string" ? profile["avatar_url"] : undefined;
        },
        20_000,
        "the ghost's picture",
      );
      expect((await claire.download(avatar)).equals(photo)).toBe(true);
    } finally {
      await photos.close();
    }
  });

  it("Matrix bridge - a message's marking and the room's marking reach the bus; outbound markings are shown", async () => {
    const marked = await claire.send(room, {
      msgtype: "m.text",
      body: "Vertraulich",
      "eu.fedgate.marking": "FR-DR",
    });
    expect(await received((e) => e.source.messageId === marked, "the marked message")).toMatchObject({
      marking: "FR-DR",
    });
    // Without power to change the topic, the bot says how to give it.
    await claire.setState(room, "eu.fedgate.marking", { marking: "DE-VS-NFD" });
    await eventually(
      async () =>
        (await claire.eventsFrom(room, scene?.bot ?? "")).find((e) =>
          String(contentOf(e)["body"]).includes("give fedgate power level 50"),
        ),
      20_000,
      "the bot asking for power",
    );
    const levels = await claire.state(room, "m.room.power_levels");
    await claire.setState(room, "m.room.power_levels", {
      ...levels,
      users: { ...(levels["users"] as Record<string, number>), [scene?.bot ?? ""]: 50 },
    });
    await claire.setState(room, "eu.fedgate.marking", { marking: "CONFIDENTIEL" });
    await claire.setState(room, "eu.fedgate.marking", { marking: "DE-VS-NFD" });
    const inRoom = await claire.say(room, "Unter der Raumeinstufung");
    expect(
      await received((e) => e.source.messageId === inRoom, "the message under the room's marking"),
    ).toMatchObject({
      marking: "DE-VS-NFD",
    });
    // The room's topic shows its marking.
    expect(
      await eventually(
        async () => {
          const topic = await claire.state(room, "m.room.topic").catch((): Json => ({}));
          return typeof topic["topic"] === "string" && topic["topic"].startsWith("[DE-VS-NFD]")
            ? topic["topic"]
            : undefined;
        },
        20_000,
        "the marking in the topic",
      ),
    ).toBe("[DE-VS-NFD]");
    await claire.setState(room, "eu.fedgate.marking", {});

    await deliverFromWeber(
      bus,
      tchapRoom(room),
      { type: "message.created", content: { body: "Nur für den Dienstgebrauch" }, marking: "DE-VS-NFD" },
      { marking: { id: "DE-VS-NFD", label: "VS-NfD" } },
    );
    const shown = await eventually(
      async () =>
        (await claire.eventsFrom(room, weberGhost)).find((e) =>
          String(contentOf(e)["body"]).endsWith("Nur für den Dienstgebrauch"),
        ),
      20_000,
      "the marked message in the room",
    );
    expect(contentOf(shown)).toMatchObject({
      body: "[VS-NfD] Nur für den Dienstgebrauch",
      "eu.fedgate.marking": "DE-VS-NFD",
    });
  });

  it("Matrix bridge - a room's marking is its state under the empty key: one sent as a message or under another key changes nothing", async () => {
    if (scene === undefined) return;
    const marked = await linkedRoom(scene, bus, claire, "einstufung");
    await claire.setState(marked, "eu.fedgate.marking", { marking: "DE-VS-NFD" });
    const first = await claire.say(marked, "Eingestuft");
    expect(await received((e) => e.source.messageId === first, "the first message")).toMatchObject({
      marking: "DE-VS-NFD",
    });
    const eve = await Official.register(scene.synapse, "eve.dupont", "Eve Dupont");
    await claire.invite(marked, eve.userId);
    await eve.join(marked);
    // A member without power to set state sends the marking as a timeline event; a moderator sets one under
    // another state key. Neither is the room's marking.
    const attempts: [() => Promise<unknown>, string][] = [
      [() => eve.send(marked, { marking: "OFFEN" }, "eu.fedgate.marking"), "after a marking message"],
      [
        () => claire.setState(marked, "eu.fedgate.marking", { marking: "FR-DR" }, "anders"),
        "after a marking under another key",
      ],
    ];
    for (const [attempt, what] of attempts) {
      await attempt();
      const said = await claire.say(marked, what);
      expect(await received((e) => e.source.messageId === said, what)).toMatchObject({
        marking: "DE-VS-NFD",
      });
    }
  });
});
