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

/**
 * A new account `localpart` on `prosody`, logged in and joined to `room` under its own name; added to
 * `clients` (for the caller to stop) as soon as it exists.
 */
export async function joinedClient(
  prosody: LocalProsody,
  room: string,
  localpart: string,
  clients: XmppClient[],
): Promise<XmppClient> {
  const password = `pw-${localpart}`;
  await prosody.addUser(localpart, password);
  const client = xmppClient(prosody, localpart, password);
  clients.push(client);
  await client.start();
  await joinRoom(client, room, localpart);
  return client;
}

/** Writes `text` in `room`; resolves once the stanza is written, with no answer to wait for. */
export function sayInRoom(client: XmppClient, room: string, text: string): Promise<void> {
  return client.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, text)));
}

/** Tells `listener` the body of each message `client` receives. */
export function onBody(client: XmppClient, listener: (body: string) => void): void {
  client.on("stanza", (stanza) => {
    const body = stanza.is("message") ? stanza.getChildText("body") : null;
    if (body !== null) listener(body);
  });
}

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
    const sender = await joinedClient(prosody, room, "sender", clients);
    const receiver = await joinedClient(prosody, room, "receiver", clients);
    bridge = await startXmppBridge(bus, prosody, log);
    await new Promise((r) => setTimeout(r, 500)); // the bridge's bot joins the room

    // Resolves once the stanza is written, with no answer to wait for: one send at a time (measure's
    // default) times Prosody and the bridge, not a round trip.
    const send = (text: string): Promise<void> => sayInRoom(sender, room, text);
    const raw = await measure(
      "client to client through Prosody",
      send,
      options.events,
      options.perSecond,
      (listener) => onBody(receiver, listener),
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
