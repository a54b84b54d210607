/**
 * A homeserver that never sends some events: Synapse keeps what it has yet to send an application service in
 * memory, so a restart loses it (element-hq/synapse#11637), and a recovery that ends as a new event comes in
 * can leave that event unsent. Here a relay between Synapse and the bridge answers some transactions itself,
 * as if the bridge had them: the bridge must find the events it never got in the room, in order.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "undici";
import type { NormalisedEvent } from "../../../schemas/types.js";
import type { JetStreamBus } from "../../../gateway/platform/bus/JetStreamBus.js";
import { freePort } from "../../harness/servers/serverProcess.js";
import { createLogger } from "../../../gateway/platform/log.js";
import type { RunningMatrixBridge } from "../../../bridges/matrix/MatrixBridge.js";
import { bodiesStartingWith, eventually } from "../../helpers/fixtures.js";
import {
  connectBus,
  contentOf,
  deliverFromWeber,
  linkedRoom,
  Official,
  startMatrixBridge,
  startMatrixScene,
  tchapRoom,
} from "../../helpers/matrixScenes.js";
import { collectInbound } from "../../helpers/xmppScenes.js";

const logLines: string[] = [];
const log = createLogger("warn", "test", {
  write: (line: string) => {
    logLines.push(line);
  },
});
const scene = await startMatrixScene();

/** Stands where Synapse sends transactions; passes them on to the bridge, but swallows those `drops` names. */
class LossyRelay {
  /** A transaction holding any of these texts is answered 200 and never passed on. */
  readonly drops = new Set<string>();
  readonly dropped: string[] = [];

  private constructor(private readonly server: Server) {}

  static async start(port: number, bridgePort: number): Promise<LossyRelay> {
    const server = createServer();
    const relay = new LossyRelay(server);
    server.on("request", (req, res) => {
      void relay.pass(req, bridgePort).then(
        ({ status, body }) => res.writeHead(status, { "content-type": "application/json" }).end(body),
        () => res.writeHead(502).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    return relay;
  }

  private async pass(req: IncomingMessage, bridgePort: number): Promise<{ status: number; body: string }> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const dropped = [...this.drops].find((text) => body.includes(text));
    if (dropped !== undefined) {
      this.dropped.push(dropped);
      return { status: 200, body: "{}" };
    }
    const response = await request(`http://127.0.0.1:${String(bridgePort)}${req.url ?? "/"}`, {
      method: req.method as "PUT" | "GET" | "POST",
      headers: { authorization: req.headers.authorization ?? "", "content-type": "application/json" },
      ...(req.method === "GET" ? {} : { body }),
    });
    return { status: response.statusCode, body: await response.body.text() };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

describe.skipIf(scene === undefined)("Matrix bridge - events the homeserver never sends", () => {
  const inbound: NormalisedEvent[] = [];
  let bus: JetStreamBus;
  let bridge: RunningMatrixBridge | undefined;
  let relay: LossyRelay | undefined;
  let claire: Official;
  let room = "";

  beforeAll(async () => {
    if (scene === undefined) return;
    bus = await connectBus(scene, log);
    await collectInbound(bus, inbound);
    // Synapse sends to the registration's port: the relay listens there, the bridge behind it.
    const bridgePort = await freePort();
    relay = await LossyRelay.start(scene.config.listen.port, bridgePort);
    bridge = await startMatrixBridge(bus, scene, log, { listen: { host: "127.0.0.1", port: bridgePort } });
    claire = await Official.register(scene.synapse, "claire.martin", "Claire Martin");
    room = await linkedRoom(scene, bus, claire, "luecke");
  });

  afterAll(async () => {
    try {
      await bridge?.stop();
      await relay?.close();
      await bus.close();
    } finally {
      await scene?.stop();
    }
  });

  it("Matrix bridge - a message the homeserver never sent is bridged before the next one, once", async () => {
    if (scene === undefined || relay === undefined) return;
    await claire.say(room, "lücke 1");
    await eventually(() => (bodiesStartingWith(inbound, "lücke").length === 1 ? true : undefined), 20_000);
    relay.drops.add("lücke 2");
    relay.drops.add("lücke 3");
    await claire.say(room, "lücke 2");
    await claire.say(room, "lücke 3");
    await eventually(() => (relay?.dropped.length === 2 ? true : undefined), 20_000, "the swallowed ones");
    relay.drops.clear();
    // The bridge's own posts in between are no gap.
    await deliverFromWeber(bus, tchapRoom(room), {
      type: "message.created",
      content: { body: "dazwischen" },
    });
    await eventually(
      async () =>
        (await claire.timeline(room)).some((e) => contentOf(e)["body"] === "dazwischen") ? true : undefined,
      20_000,
      "the delivery in the room",
    );
    await claire.say(room, "lücke 4");
    await eventually(
      () => (bodiesStartingWith(inbound, "lücke 4").length > 0 ? true : undefined),
      20_000,
      "the message after the swallowed ones",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(bodiesStartingWith(inbound, "lücke")).toEqual(["lücke 1", "lücke 2", "lücke 3", "lücke 4"]);
  });

  it("Matrix bridge - messages written at once, stored in another order than sent, are bridged once, and none is taken for skipped", async () => {
    if (scene === undefined) return;
    logLines.length = 0;
    const count = 40;
    // Eight in flight at a time: the homeserver may store them in its timeline in another order than it sends them.
    for (let first = 1; first <= count; first += 8)
      await Promise.all(
        Array.from({ length: 8 }, (_, i) => claire.say(room, `gleichzeitig ${String(first + i)}`)),
      );
    await eventually(
      () => (bodiesStartingWith(inbound, "gleichzeitig").length >= count ? true : undefined),
      30_000,
      "the messages written at once",
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(new Set(bodiesStartingWith(inbound, "gleichzeitig")).size).toBe(count);
    expect(bodiesStartingWith(inbound, "gleichzeitig")).toHaveLength(count);
    // Each look back found a handled event before the new one: nothing skipped, no walk to the room's start.
    expect(logLines.filter((line) => line.includes("look") || line.includes("never sent"))).toEqual([]);
  });
});
