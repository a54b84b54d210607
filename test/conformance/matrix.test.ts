import { randomUUID } from "node:crypto";
import { afterAll } from "vitest";
import type { RunningMatrixBridge } from "../../bridges/matrix/MatrixBridge.js";
import { matrixCapabilities } from "../../bridges/matrix/capabilities.js";
import { createLogger } from "../../gateway/platform/log.js";
import { eventually } from "../helpers/fixtures.js";
import {
  contentOf,
  type Json,
  linkTchapRoom,
  Official,
  startMatrixBridge,
  startMatrixScene,
} from "../helpers/matrixScenes.js";
import { describeAdapterConformance, type ShownMessage } from "./adapterConformance.js";

const log = createLogger("silent");
const scene = await startMatrixScene();
afterAll(async () => {
  await scene?.stop();
});
let rooms = 0;

/** A JSON object, or an empty one for anything else. */
function objectOf(value: unknown): Json {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

/** The room as Claire's client shows it: edits applied, redacted messages deleted, authors by display name. */
function shownIn(timeline: readonly Json[]): ShownMessage[] {
  const names = new Map<string, string>();
  const shown: ShownMessage[] = [];
  for (const event of timeline) {
    const content = contentOf(event);
    const sender = String(event["sender"]);
    if (event["type"] === "m.room.member" && typeof content["displayname"] === "string")
      names.set(String(event["state_key"]), content["displayname"]);
    if (event["type"] === "m.room.redaction") {
      const original = shown.find((m) => m.id === event["redacts"]);
      if (original !== undefined) original.deleted = true;
    }
    if (event["type"] !== "m.room.message") continue;
    const relation = objectOf(content["m.relates_to"]);
    if (relation["rel_type"] === "m.replace") {
      const original = shown.find((m) => m.id === relation["event_id"]);
      const replaced = objectOf(content["m.new_content"])["body"];
      if (original !== undefined && typeof replaced === "string") original.text = replaced;
      continue;
    }
    const replyTo = objectOf(relation["m.in_reply_to"])["event_id"];
    shown.push({
      id: String(event["event_id"]),
      author: names.get(sender) ?? sender,
      text: typeof content["body"] === "string" ? content["body"] : "",
      ...(typeof replyTo === "string" ? { replyTo } : {}),
      ...(content["body"] === undefined ? { deleted: true } : {}),
    });
  }
  return shown;
}

/** The Matrix bridge against Synapse; Claire writes and reads in a linked room as a client would. */
describeAdapterConformance(
  "matrix",
  async () => {
    if (scene === undefined) throw new Error("Synapse is not available");
    rooms += 1;
    const linkId = `conformance${String(rooms)}`;
    const claire = await Official.register(scene.synapse, `claire-${randomUUID()}`, "Claire Martin");
    const room = await claire.createRoom();
    let bridge: RunningMatrixBridge | undefined;
    let joined = false;
    return {
      network: "matrix",
      instance: "tchap",
      conversation: room,
      capabilities: matrixCapabilities,
      async start(bus) {
        if (!joined) await linkTchapRoom(bus, linkId, room);
        bridge = await startMatrixBridge(bus, scene, log);
        if (!joined) {
          await claire.invite(room, scene.bot);
          await eventually(
            async () => ((await claire.joinedMembers(room)).includes(scene.bot) ? true : undefined),
            20_000,
            "the bot in the room",
          );
          joined = true;
        }
      },
      async stop() {
        await bridge?.stop();
        bridge = undefined;
      },
      async say(text) {
        await claire.say(room, text);
      },
      shown: async () => shownIn(await claire.timeline(room, 100)),
      close: () => claire.close(),
    };
  },
  scene === undefined,
);
