import { StashcatBridge, type RunningStashcatBridge } from "../../bridges/stashcat/StashcatBridge.js";
import { stashcatCapabilities } from "../../bridges/stashcat/capabilities.js";
import { createLogger } from "../../gateway/platform/log.js";
import { StashcatServer } from "../harness/servers/stashcat/StashcatServer.js";
import {
  einsatz,
  linkChannel,
  MEYER,
  Officer,
  stashcatBridgeConfigFor,
  seedUser,
} from "../helpers/stashcatScenes.js";
import { describeAdapterConformance } from "./adapterConformance.js";

const log = createLogger("silent");

/** The Stashcat bridge against the project's Stashcat-compatible server; Meyer writes and reads as a client. */
describeAdapterConformance("stashcat", async () => {
  const server = await StashcatServer.start();
  const meyer = await Officer.loginTo(server.apiUrl, seedUser(server.seed, MEYER), log);
  const loaded = await stashcatBridgeConfigFor(server);
  let bridge: RunningStashcatBridge | undefined;
  let linked = false;
  return {
    network: "stashcat",
    instance: "ni",
    conversation: `${einsatz.type}:${String(einsatz.id)}`,
    capabilities: stashcatCapabilities,
    async start(bus) {
      if (!linked) await linkChannel(bus, "conformance");
      linked = true;
      bridge = await StashcatBridge.start(bus, loaded, log);
    },
    async stop() {
      await bridge?.stop();
      bridge = undefined;
    },
    say: async (text) => {
      await meyer.say(einsatz, text);
    },
    shown: async () =>
      (await meyer.read(einsatz)).map((m) => ({
        id: String(m.id),
        author: m.senderName,
        text: m.plain,
        ...(m.replyTo === undefined ? {} : { replyTo: String(m.replyTo) }),
        ...(m.deleted ? { deleted: true } : {}),
      })),
    close: () => server.stop(),
  };
});
