/**
 * XMPP benchmark: from an XMPP client's send to the normalised event on the bus (through Prosody and the
 * bridge), next to plain client-to-client delivery through the same Prosody, in the same run.
 */
import { connect } from "@nats-io/transport-node";
import type { RunningXmppBridge } from "../bridges/xmpp/XmppBridge.js";
import { subjects } from "../schemas/contract/subjects.js";
import { LocalNatsServer } from "../test/harness/servers/LocalNatsServer.js";
import { createLogger } from "../gateway/platform/log.js";
import { LocalProsody } from "../test/harness/servers/xmpp/LocalProsody.js";
import { stopClient, xml, xmppClient, type XmppClient } from "../test/helpers/prosody.js";
import { joinRoom, linkedBus, startXmppBridge } from "../test/helpers/xmppScenes.js";
import { measure, type RunFigures } from "./measure.js";

const log = createLogger("warn", "fedgate-bench");

export async function runXmppBenchmark(options: {
  events: number;
  perSecond: number;
}): Promise<RunFigures[]> {
  const nats = await LocalNatsServer.start();
  const prosody = await LocalProsody.start();
  const room = `bench@${prosody.mucDomain}`;
  const bus = await linkedBus(nats.url, log, room, "bench");
  const nc = await connect({ servers: nats.url });
  const clients: XmppClient[] = [];
  let bridge: RunningXmppBridge | undefined;
  try {
    await prosody.addUser("sender", "pw-sender");
    await prosody.addUser("receiver", "pw-receiver");
    const sender = xmppClient(prosody, "sender", "pw-sender");
    const receiver = xmppClient(prosody, "receiver", "pw-receiver");
    clients.push(sender, receiver);
    await sender.start();
    await joinRoom(sender, room, "Sender");
    await receiver.start();
    await joinRoom(receiver, room, "Receiver");
    bridge = await startXmppBridge(bus, prosody, log);
    await new Promise((r) => setTimeout(r, 500)); // the bridge's bot joins the room

    // Resolves once the stanza is written, with no answer to wait for: one send at a time (measure's
    // default) times Prosody and the bridge, not a round trip.
    const send = (text: string): Promise<void> =>
      sender.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, text)));
    const raw = await measure(
      "client to client through Prosody",
      send,
      options.events,
      options.perSecond,
      (listener) =>
        receiver.on("stanza", (stanza) => {
          const text = stanza.is("message") ? stanza.getChildText("body") : null;
          if (text !== null) listener(text);
        }),
    );
    const bridged = await measure(
      "client to bus through the bridge",
      send,
      options.events,
      options.perSecond,
      (listener) =>
        nc.subscribe(subjects.inboundAll, {
          callback: (_error, message) => {
            const body = (JSON.parse(message.string()) as { content?: { body?: string } }).content?.body;
            if (body !== undefined) listener(body);
          },
        }),
    );
    return [raw, bridged];
  } finally {
    await bridge?.stop();
    for (const client of clients) await stopClient(client);
    await nc.close();
    await bus.close();
    await prosody.stop();
    await nats.stop();
  }
}
