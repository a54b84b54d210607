/** The bridges this build contains, by network name: what `fedgate bridge <network>` can run. */
import type { LoadedConfig } from "../gateway/config/loadConfig.js";
import type { Logger } from "../gateway/log.js";
import { runXmppBridge } from "./xmpp/runXmppBridge.js";

export type BridgeRunner = (loaded: LoadedConfig, log: Logger) => Promise<() => Promise<void>>;

export const bridges: Readonly<Record<string, BridgeRunner>> = {
  xmpp: runXmppBridge,
};
