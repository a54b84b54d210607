/**
 * XMPP benchmark: from an XMPP client's send to the normalised event on the bus (through Prosody and the
 * bridge), next to plain client-to-client delivery through the same Prosody, in the same run.
 */
import { connect } from "@nats-io/transport-node";
import type { XmppBridge } from "../bridges/xmpp/XmppBridge.js";
import { subjects } from "../gateway/contract/subjects.js";
import { LocalNatsServer } from "../gateway/demo/LocalNatsServer.js";
import { createLogger } from "../gateway/log.js";
import { LocalProsody } from "../bridges/xmpp/server/LocalProsody.js";
import { stopClient, xml, xmppClient, type XmppClient } from "../test/helpers/prosody.js";
import { joinRoom, linkedBus, startXmppBridge } from "../test/helpers/xmppScenes.js";
import type { RunFigures } from "./routing.js";

const log = createLogger("warn", "fedgate-bench");

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/**
 * Sends `events` messages from `sender` and measures, per message, the time until `arrived` reports it:
 * first as fast as the client sends (throughput), then paced (latency).
 */
async function measure(
  name: string,
  sender: XmppClient,
  room: string,
  events: number,
  perSecond: number,
  onArrival: (listener: (text: string) => void) => void,
): Promise<RunFigures> {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let arrived = 0;
  onArrival((text) => {
    const at = sentAt.get(text);
    if (at === undefined) return;
    latencies.push(performance.now() - at);
    sentAt.delete(text);
    arrived++;
  });
  const send = (text: string): Promise<void> => {
    sentAt.set(text, performance.now());
    return sender.send(xml("message", { to: room, type: "groupchat" }, xml("body", {}, text)));
  };
  const waitFor = async (count: number): Promise<void> => {
    const deadline = performance.now() + 60_000;
    while (arrived < count && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (arrived < count) throw new Error(`${name}: only ${arrived}/${count} messages arrived`);
  };

  const burstStart = performance.now();
  for (let n = 0; n < events; n++) await send(`${name} burst ${n}`);
  await waitFor(events);
  const throughputPerSecond = events / ((performance.now() - burstStart) / 1000);

  latencies.length = 0;
  const begin = performance.now();
  for (let n = 0; n < events; n++) {
    const wait = begin + (n * 1000) / perSecond - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    await send(`${name} paced ${n}`);
  }
  await waitFor(events * 2);
  latencies.sort((a, b) => a - b);
  return {
    name,
    events,
    throughputPerSecond,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
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
  let bridge: XmppBridge | undefined;
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

    const raw = await measure(
      "client to client through Prosody",
      sender,
      room,
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
      sender,
      room,
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
