import type { HttpListener } from "../../../gateway/platform/http/HttpListener.js";
/**
 * Who may join a Matrix room to a link, against a real Synapse: authority over the link (a one-time join
 * code the admin API issues), not over a room anyone can create. Direct chats' links take no other room.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import { listenAdminApi } from "../../../gateway/core/admin/AdminApi.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { buckets } from "../../../schemas/contract/topology.js";
import { directLink } from "../../../schemas/contract/directConversations.js";
import { createLogger } from "../../../gateway/platform/log.js";
import { JoinCodeStore, type IssuedJoinCode } from "../../../gateway/platform/stores/JoinCodeStore.js";
import { LinkStore } from "../../../gateway/platform/stores/LinkStore.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import {
  connectBus,
  contentOf,
  linkTchapRoom,
  Official,
  putTransaction,
  startMatrixBridge,
  startMatrixScene,
  weber,
  weberXmppRoom,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const logLines: string[] = [];
const log = createLogger("info", "test", {
  write: (chunk: string) => {
    logLines.push(chunk);
  },
});
const scene = await startMatrixScene();
const adminToken = "admin-token-for-join-codes";

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("no Matrix scene");
  return value;
}

describe.skipIf(scene === undefined)("Matrix bridge - joining a room to a link", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge;
  let links: LinkStore;
  let admin: HttpListener;
  let claire: Official;
  let mallory: Official;
  const bot = scene?.bot ?? "";

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    links = new LinkStore(await bus.keyValue(buckets.links));
    await links.start();
    bridge = await startMatrixBridge(bus, scene, log);
    admin = await listenAdminApi(
      {
        links,
        joinCodes: await JoinCodeStore.open(bus, log),
        checkAgency: (id) => ["dinum-mi", "bpol", "polizei-ni"].includes(id),
        token: adminToken,
        readiness: () => ({}),
        log,
      },
      "127.0.0.1",
      0,
    );
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
    mallory = await Official.register(scene.synapse, "mallory", "Mallory");
    await links.create({
      id: "grenze",
      description: "Grenzlage",
      endpoints: [
        weberXmppRoom,
        { network: "stashcat", instance: "ni", conversation: "channel:7", agency: "polizei-ni" },
      ],
    });
  });

  afterAll(async () => {
    try {
      links.stop();
      await admin.close();
      await bridge.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  /** A join code for `grenze` from the admin API, as an operator asks for one. */
  async function joinCode(body: Record<string, unknown> = {}): Promise<IssuedJoinCode> {
    const response = await fetch(`${admin.url}/v1/links/grenze/join-codes`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ network: "matrix", instance: "tchap", agency: "dinum-mi", ...body }),
    });
    expect(response.status).toBe(201);
    return (await response.json()) as IssuedJoinCode;
  }

  function room(conversation: string) {
    return { network: "matrix", instance: "tchap", conversation };
  }

  /** A room `official` creates (so is its moderator) with the bot in it. */
  async function roomWithBot(official: Official): Promise<string> {
    const created = await official.createRoom();
    await official.invite(created, bot);
    await botSays(official, created, "!fedgate link");
    return created;
  }

  function botSays(official: Official, where: string, words: string): Promise<unknown> {
    return eventually(
      async () =>
        (await official.eventsFrom(where, bot)).find((e) => String(contentOf(e)["body"]).includes(words)),
      20_000,
      `the bot saying "${words}"`,
    );
  }

  /** The bot's answer to a command: its next notice in the room. */
  async function command(official: Official, where: string, text: string): Promise<string> {
    const before = (await official.eventsFrom(where, bot)).length;
    await official.say(where, text);
    return eventually(
      async () => {
        const notices = await official.eventsFrom(where, bot);
        return notices.length > before ? String(contentOf(notices.at(-1))["body"]) : undefined;
      },
      20_000,
      `the bot's answer to ${text}`,
    );
  }

  it("Matrix linking - a room's creator cannot join it to a link by naming the link's id", async () => {
    const own = await roomWithBot(mallory);
    const answer = await command(mallory, own, "!fedgate link grenze");
    expect(answer).not.toContain("Linked");
    // The answer does not tell whether such a link exists.
    expect(await command(mallory, own, "!fedgate link gibt-es-nicht")).toBe(answer);
    expect(links.get("grenze")?.endpoints).toHaveLength(2);
    expect(await links.resolve(room(own))).toBeUndefined();
    const said = await mallory.say(own, "Lese ich mit?");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(inbound.some((e) => e.source.messageId === said)).toBe(false);
  });

  it("Matrix linking - no one can join a room to someone else's direct chat by computing its id", async () => {
    const dm = directLink(
      { network: "matrix", instance: "tchap", userId: claire.userId },
      "dinum-mi",
      { network: "xmpp", instance: "bpol", userId: weber.userId },
      "bpol",
    );
    await links.create(dm);
    const own = await roomWithBot(mallory);
    expect(await command(mallory, own, `!fedgate link ${dm.id}`)).not.toContain("Linked");
    expect(links.get(dm.id)?.endpoints).toHaveLength(2);
    expect(await links.resolve(room(own))).toBeUndefined();
  });

  it("Matrix linking - a room moderator joins the room with a one-time code the admin API issued for it", async () => {
    const bob = await Official.register(must(scene).synapse, "bob.durand", "Bob Durand");
    const own = await roomWithBot(claire);
    const other = await roomWithBot(claire);
    const bound = await joinCode({ conversation: own });

    await claire.invite(own, bob.userId);
    await bob.join(own);
    expect(await command(bob, own, `!fedgate link ${bound.code}`)).toContain("Only room moderators");
    // Bound to its room: refused in another, and not used up by the attempt.
    const refusal = await command(claire, other, `!fedgate link ${bound.code}`);
    expect(refusal).toContain("Not done: the join code is");
    expect(await command(claire, own, `!fedgate link ${bound.code}`)).toBe("Linked to grenze: Grenzlage.");
    expect(await links.resolve(room(own))).toMatchObject({
      link: { id: "grenze" },
      endpoint: { agency: "dinum-mi", kind: "room" },
    });
    const said = await claire.say(own, "Jetzt verbunden");
    await eventually(
      () => inbound.find((e) => e.source.messageId === said),
      20_000,
      "the message on the bus",
    );
    // Who linked what, with which code, is in the log; the code itself is not.
    const audit = logLines.find((l) => l.includes("room linked with a join code")) ?? "";
    expect(audit).toContain(bound.codeId);
    expect(audit).toContain(claire.userId);
    expect(logLines.join("")).not.toContain(bound.code);

    // A code used once is spent, and its refusal reads as any other.
    const unbound = await joinCode();
    expect(await command(claire, other, `!fedgate link ${unbound.code}`)).toBe(
      "Linked to grenze: Grenzlage.",
    );
    const third = await roomWithBot(claire);
    expect(await command(claire, third, `!fedgate link ${unbound.code}`)).toBe(refusal);
    expect(await links.resolve(room(third))).toBeUndefined();
    expect(await command(claire, own, "!fedgate unlink")).toBe("Unlinked.");
    expect(links.get("grenze")?.endpoints).toHaveLength(3);
  });

  it("Matrix linking - a room of version 12, whose id names no server, is linked by its creator", async () => {
    const v12 = await claire.createRoom({ preset: "private_chat", room_version: "12" });
    expect(v12).not.toContain(":");
    await claire.invite(v12, bot);
    await botSays(claire, v12, "!fedgate link");
    const { code } = await joinCode({ conversation: v12 });
    // Its creator holds power the power levels do not list.
    expect(await command(claire, v12, `!fedgate link ${code}`)).toBe("Linked to grenze: Grenzlage.");
    const said = await claire.say(v12, "Raumversion 12");
    await eventually(
      () => inbound.find((e) => e.source.messageId === said),
      20_000,
      "the message on the bus",
    );
  });

  it("Matrix linking - the bot joins no room of another homeserver, and takes no invitation from its users", async () => {
    const invite = (room: string, sender: string, unsigned?: Record<string, unknown>) => ({
      type: "m.room.member",
      room_id: room,
      sender,
      state_key: bot,
      event_id: `$invite-${randomUUID()}`,
      origin_server_ts: Date.now(),
      content: { membership: "invite" },
      ...(unsigned === undefined ? {} : { unsigned }),
    });
    const refusedRooms = ["!eve:evil.example", "!elsewhere:evil.example", "!Xv12RoomWithoutServer"];
    const status = await putTransaction(must(scene), bridge.url, [
      invite("!eve:evil.example", "@eve:evil.example"),
      invite("!elsewhere:evil.example", claire.userId),
      invite("!Xv12RoomWithoutServer", claire.userId, {
        invite_room_state: [
          { type: "m.room.create", state_key: "", sender: "@eve:evil.example", content: {} },
        ],
      }),
    ]);
    expect(status).toBe(200);
    for (const refused of refusedRooms)
      expect(
        await eventually(
          () => logLines.find((l) => l.includes(refused) && l.includes("FG_NATIVE_INVALID")),
          20_000,
          `the refused invitation into ${refused}`,
        ),
      ).toContain("fedgate");
    expect(logLines.some((l) => l.includes("bot invited into a room") && l.includes("evil.example"))).toBe(
      false,
    );
    expect(logLines.some((l) => l.includes("Xv12RoomWithoutServer") && l.includes("bot invited"))).toBe(
      false,
    );

    // A real invitation into a room of a server outside roomServers is declined with the reason.
    await bridge.stop();
    bridge = await startMatrixBridge(bus, must(scene), log, { roomServers: ["rooms.partner.localhost"] });
    const local = await claire.createRoom();
    await claire.invite(local, bot);
    const declined = await eventually(
      async () =>
        (await claire.timeline(local)).find(
          (e) =>
            e["type"] === "m.room.member" && e["state_key"] === bot && contentOf(e)["membership"] === "leave",
        ),
      20_000,
      "the bot declining the invitation",
    );
    expect(String(contentOf(declined)["reason"])).toContain("rooms.partner.localhost");
    // Nor does it join a room linked behind its back on such a server.
    const linked = await claire.createRoom();
    await linkTchapRoom(bus, `fremd-${randomUUID().slice(0, 8)}`, linked);
    await eventually(
      () => logLines.find((l) => l.includes(linked) && l.includes("the bot does not join it")),
      20_000,
      "the linked room refused",
    );
    expect(await claire.joinedMembers(linked)).not.toContain(bot);
  });
});
