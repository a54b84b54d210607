import type { LoadedConfig } from "../../gateway/config/loadConfig.js";
import { connectBus } from "../../gateway/GatewayService.js";
import type { Logger } from "../../gateway/log.js";
import { loadXmppConfig } from "./config.js";
import { XmppBridge } from "./XmppBridge.js";

/** `fedgate bridge xmpp`: connects the bus and the XMPP server; resolves with a function that stops both. */
export async function runXmppBridge(loaded: LoadedConfig, log: Logger): Promise<() => Promise<void>> {
  const { config, secret } = await loadXmppConfig(loaded);
  const bus = await connectBus(loaded, log, `fedgate-bridge-xmpp-${config.instance}`);
  const bridge = await XmppBridge.start(bus, config, secret, log);
  return async () => {
    await bridge.stop();
    await bus.close();
  };
}
