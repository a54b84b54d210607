/**
 * A real ejabberd per test file, so that the XMPP bridge is shown to work with a second server
 * implementation (see servers.ts for when it is skipped). Clients log in with xmppClient from prosody.ts,
 * which takes any server.
 */
import { LocalEjabberd, type EjabberdOptions } from "../harness/servers/xmpp/LocalEjabberd.js";
import { startOrSkip } from "./servers.js";

export function startEjabberdOrSkip(options?: EjabberdOptions): Promise<LocalEjabberd | undefined> {
  return startOrSkip("ejabberd", () => LocalEjabberd.start(options));
}
