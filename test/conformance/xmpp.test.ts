import { randomUUID } from "node:crypto";
import { afterAll } from "vitest";
import type { RunningXmppBridge } from "../../bridges/xmpp/XmppBridge.js";
import { xmppCapabilities } from "../../bridges/xmpp/capabilities.js";
import { createLogger } from "../../gateway/platform/log.js";
import {
  linkRoom,
  startProsodyOrSkip,
  stopClient,
  xml,
  type Element,
  type XmppClient,
} from "../helpers/prosody.js";
import { NS } from "../helpers/xmppNamespaces.js";
import { addWeber, bridgeInRoom, startXmppBridge, weberInRoom } from "../helpers/xmppScenes.js";
import { eventually } from "../helpers/fixtures.js";
import { describeAdapterConformance, type ShownMessage } from "./adapterConformance.js";

const log = createLogger("silent");
const prosody = await startProsodyOrSkip();
let rooms = 0;
afterAll(async () => {
  await prosody?.stop();
});

/**
 * The room as officer Weber's client shows it: each message under the room's stanza-id (what replies and
 * retractions name in a group chat), corrections (which name the original's own id, XEP-0308) applied,
 * retractions marking it deleted. The room's subject is no message.
 */
function shownIn(heard: readonly Element[], room: string): ShownMessage[] {
  const shown: ShownMessage[] = [];
  const byOwnId = new Map<string, ShownMessage>();
  const find = (id: string): ShownMessage | undefined => byOwnId.get(id) ?? shown.find((m) => m.id === id);
  for (const stanza of heard) {
    if (stanza.attrs["type"] !== "groupchat" || stanza.getChild("body") === undefined) continue;
    const replaced = stanza.getChild("replace", NS.correction)?.attrs["id"];
    const retracted = stanza.getChild("retract", NS.retract)?.attrs["id"];
    const body = stanza.getChildText("body") ?? "";
    if (replaced !== undefined) {
      const original = find(replaced);
      if (original !== undefined) original.text = body;
    } else if (retracted !== undefined) {
      const original = find(retracted);
      if (original !== undefined) original.deleted = true;
    } else {
      const id = stanza.getChildren("stanza-id", NS.sid).find((s) => s.attrs["by"] === room)?.attrs["id"];
      const replyTo = stanza.getChild("reply", NS.reply)?.attrs["id"];
      const message: ShownMessage = {
        id: id ?? "",
        author: String(stanza.attrs["from"]).slice(room.length + 1),
        text: body,
        ...(replyTo === undefined ? {} : { replyTo }),
      };
      shown.push(message);
      const ownId = stanza.attrs["id"];
      if (ownId !== undefined) byOwnId.set(ownId, message);
    }
  }
  return shown;
}

/** The XMPP bridge against Prosody; officer Weber writes and reads in the room as a client would. */
describeAdapterConformance(
  "xmpp",
  () => {
    if (prosody === undefined) throw new Error("Prosody is not available");
    rooms += 1;
    const room = `conformance${String(rooms)}@${prosody.mucDomain}`;
    const heard: Element[] = [];
    const present = new Set<string>();
    let bridge: RunningXmppBridge | undefined;
    let officer: XmppClient | undefined;
    return Promise.resolve({
      network: "xmpp",
      instance: "bpol",
      conversation: room,
      capabilities: xmppCapabilities,
      async start(bus) {
        if (officer === undefined) {
          await linkRoom(bus, `conformance${String(rooms)}`, room);
          await addWeber(prosody);
          officer = await weberInRoom(prosody, room, { heard, present });
        }
        bridge = await startXmppBridge(bus, prosody, log);
        await bridgeInRoom(present, room);
      },
      async stop() {
        await bridge?.stop();
        bridge = undefined;
        await eventually(() => (present.has(`${room}/fedgate`) ? undefined : true), 10_000, "the bot gone");
      },
      async say(text) {
        const id = randomUUID();
        await officer?.send(xml("message", { to: room, type: "groupchat", id }, xml("body", {}, text)));
        // The room's echo: it has the message, with its stanza-id.
        await eventually(() => heard.find((m) => m.attrs["id"] === id));
      },
      shown: () => Promise.resolve(shownIn(heard, room)),
      async close() {
        if (officer !== undefined) await stopClient(officer);
      },
    });
  },
  prosody === undefined,
);
