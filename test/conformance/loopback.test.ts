import { LOOPBACK, LoopbackBridge, loopbackCapabilities } from "../harness/loopback/LoopbackBridge.js";
import { LoopbackServer } from "../harness/loopback/LoopbackServer.js";
import { createLogger } from "../../gateway/platform/log.js";
import { describeAdapterConformance } from "./adapterConformance.js";

const log = createLogger("silent");

describeAdapterConformance("loopback", () => {
  const server = new LoopbackServer();
  const conversation = "einsatz";
  let bridge: Awaited<ReturnType<typeof LoopbackBridge.start>> | undefined;
  let caughtUpTo = new Map<string, string>();
  return Promise.resolve({
    network: LOOPBACK,
    instance: "demo",
    conversation,
    capabilities: loopbackCapabilities,
    async start(bus) {
      bridge = await LoopbackBridge.start(bus, server, {
        instance: "demo",
        conversations: [conversation],
        log,
        caughtUpTo,
      });
    },
    async stop() {
      caughtUpTo = bridge?.caughtUpTo ?? caughtUpTo;
      await bridge?.stop();
      bridge = undefined;
    },
    say: (text) => {
      server.post({ conversation, from: "meyer", text });
      return Promise.resolve();
    },
    shown: () => Promise.resolve(server.history(conversation).map((m) => ({ ...m, author: m.from }))),
    close: () => Promise.resolve(),
  });
});
