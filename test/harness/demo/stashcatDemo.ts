/**
 * The Stashcat side of the demo: the Stashcat-compatible server for the Polizei Niedersachsen, with
 * the bridge's service account, an officer's account and the channel "Einsatz" (1001), which the demo links.
 */
import { freePort } from "../servers/serverProcess.js";
import type { Logger } from "../../../gateway/platform/log.js";
import type { DemoPart } from "./demoParts.js";
import type { StashcatBridgeConfig } from "../../../bridges/stashcat/config.types.js";
import type { ConfigInput } from "../configInput.js";
import { StashcatServer } from "../servers/stashcat/StashcatServer.js";

export async function startStashcatDemo(_dir: string, log: Logger): Promise<DemoPart> {
  const server = await StashcatServer.start();
  const account = server.seed.users.find((u) => u.id === 4700);
  const officer = server.seed.users.find((u) => u.id === 4711);
  if (account === undefined || officer === undefined) {
    await server.stop();
    throw new Error("the Stashcat seed lacks its service account or officer");
  }
  log.info({ api: server.apiUrl }, "demo Stashcat-compatible server started");
  // A port known before the bridge starts: the other bridges' configs list where its file links point.
  const port = await freePort();
  const config: ConfigInput<StashcatBridgeConfig> = {
    instance: "ni",
    apiUrl: server.apiUrl,
    pushUrl: server.pushUrl,
    email: account.email,
    password: { value: account.password },
    encryptionPassword: { value: account.encryptionPassword },
    agency: "polizei-ni",
    listen: { host: "127.0.0.1", port },
  };
  const login = `--api ${server.apiUrl} --email ${officer.email} --password ${officer.password} --encryption-password ${officer.encryptionPassword}`;
  return {
    config: { ...config },
    conversation: "channel:1001",
    servers: { stashcat: server.apiUrl, "stashcat-push": server.pushUrl },
    fileServers: [`http://127.0.0.1:${String(port)}`],
    accounts: [
      {
        network: "stashcat",
        instance: "ni",
        agency: "polizei-ni",
        user: officer.email,
        password: officer.password,
        encryptionPassword: officer.encryptionPassword,
        server: server.apiUrl,
      },
    ],
    try: [
      {
        description: `as Polizei Niedersachsen: write in the channel Einsatz (1001) as ${officer.email}, encrypted as Stashcat's clients do; it reaches the linked XMPP room and Tchap room`,
        command: `npm run -s demo -- stashcat send ${login} --channel 1001 --text "Lage in Hannover ruhig"`,
      },
      {
        description: "read the channel, decrypted, as the officer sees it",
        command: `npm run -s demo -- stashcat read ${login} --channel 1001`,
      },
    ],
    stop: () => server.stop(),
  };
}
