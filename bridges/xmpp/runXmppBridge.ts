import type { LoadedConfig } from "../../gateway/platform/config/loadConfig.js";
import type { Logger } from "../../gateway/platform/log.js";
import { runBridge } from "../kit/runBridge.js";
import { loadXmppConfig } from "./config.js";
import { XmppBridge } from "./XmppBridge.js";

/** `fedgate bridge xmpp`: connects the bus and the XMPP server; resolves with a function that stops both. */
export function runXmppBridge(loaded: LoadedConfig, log: Logger): Promise<() => Promise<void>> {
  return runBridge(
    "xmpp",
    loaded,
    log,
    async (l) => {
      const xmpp = await loadXmppConfig(l);
      return { ...xmpp, instance: xmpp.config.instance };
    },
    (bus, { config, secret }, deliveries) => XmppBridge.start(bus, config, secret, log, deliveries),
  );
}
