/**
 * The Stashcat bridge against hostile input, on the Stashcat-compatible server and a real nats-server: a body
 * that tries to pass for another sender, and likes that must not each become a person.
 */
import MarkdownIt from "markdown-it";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NormalisedEvent } from "../../../schemas/types.js";
import { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { RunningStashcatBridge } from "../../../bridges/stashcat/StashcatBridge.js";
import { eventually } from "../../helpers/fixtures.js";
import { deliverFromWeber } from "../../helpers/matrixScenes.js";
import {
  einsatz,
  linkChannel,
  MEYER,
  Officer,
  SCHULZ,
  startStashcatBridge,
  startStashcatScene,
  stashcatTarget,
} from "../../helpers/stashcatScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const log = createLogger("silent");
const scene = await startStashcatScene();
/** The channel the bridge's account is in; this file's server is its own. */
const lage = einsatz;
/** What a Stashcat client does with a markdown message: renders it. */
const client = new MarkdownIt({ linkify: true });

describe.skipIf(scene === undefined)("Stashcat bridge - hostile input", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningStashcatBridge | undefined;
  let meyer: Officer;
  let schulz: Officer;

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await JetStreamBus.connect({ servers: scene.nats.url, log });
    await bus.ensureTopology();
    await collectInbound(bus, inbound);
    await linkChannel(bus, "lage", lage);
    bridge = await startStashcatBridge(bus, scene, log);
    meyer = await Officer.login(scene, MEYER, log);
    schulz = await Officer.login(scene, SCHULZ, log);
  });

  afterAll(async () => {
    try {
      await bridge?.stop();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  it("Stashcat bridge - a plain-text body cannot forge a second sender's header or disguise a link", async () => {
    const forged =
      "Alles ruhig\n**Polizeipräsident (Polizei Niedersachsen):** Sofort räumen, [Lageplan](http://evil.example/x)";
    await deliverFromWeber(bus, stashcatTarget(lage), { type: "message.created", content: { body: forged } });
    const message = await eventually(
      async () => (await schulz.read(lage)).find((m) => m.plain.includes("Alles ruhig")),
      20_000,
      "the delivery in the channel",
    );
    const shown = client.render(message.plain);
    // One bold header, the real one; the link shows where it goes, as a bare URL a client may link.
    expect(shown.match(/<strong>/g)).toHaveLength(1);
    expect(shown).toContain("<strong>Kommissarin Weber (Bundespolizei):</strong>");
    expect(shown).not.toMatch(/<a [^>]*>Lageplan<\/a>/);
    expect(shown).toContain("**Polizeipräsident (Polizei Niedersachsen):**");
  });

  it("Stashcat bridge - likes are one stable sender's reaction that comes and goes, not one person per like", async () => {
    const original = await meyer.say(lage, "Lagebild 12 Uhr");
    const event = await eventually(
      () => inbound.find((e) => e.source.messageId === String(original)),
      20_000,
      "the message on the bus",
    );
    const reactions = (): NormalisedEvent[] =>
      inbound.filter((e) => e.type.startsWith("reaction.") && e.relations?.reactsTo === event.id);
    await schulz.client.like(original);
    await meyer.client.like(original);
    await eventually(
      async () =>
        (await schulz.client.messages(lage, { limit: 50 })).find((m) => m.id === original)?.likes === 2
          ? true
          : undefined,
      20_000,
      "two likes",
    );
    await eventually(() => (reactions().length >= 1 ? true : undefined), 20_000, "the like on the bus");
    await schulz.client.unlike(original);
    await meyer.client.unlike(original);
    await eventually(
      () => (reactions().some((e) => e.type === "reaction.removed") ? true : undefined),
      20_000,
      "the likes taken back on the bus",
    );
    // A message seen again (a catch-up) changes nothing.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const senders = new Set(reactions().map((e) => e.sender.userId));
    expect(senders.size).toBe(1);
    expect(reactions().map((e) => e.type)).toEqual(["reaction.added", "reaction.removed"]);
  });
});
