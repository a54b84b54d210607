/** The XMPP side of the demo: Prosody for the Bundespolizei with one officer's account. */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "../../../gateway/platform/log.js";
import type { DemoPart } from "./demoParts.js";
import { LocalProsody } from "../servers/xmpp/LocalProsody.js";

export async function startXmppDemo(dir: string, log: Logger): Promise<DemoPart> {
  const prosody = await LocalProsody.start({ domain: "bpol.localhost", dir: join(dir, "prosody") });
  const password = randomBytes(9).toString("base64url");
  const user = await prosody.addUser("weber", password);
  log.info({ domain: prosody.domain }, "demo Prosody started");
  const config = prosody.bridgeConfig("bpol");
  const server = `127.0.0.1:${prosody.c2sPort} (no TLS: allow plain-text login on loopback)`;
  return {
    // Officers can open direct chats with the puppets they meet in the linked room. Their files are on
    // Prosody's upload service, on loopback: the bridge fetches from it because it is listed.
    config: { ...config, agency: "bpol", attachments: { hosts: [prosody.httpUrl] } },
    servers: { prosody: prosody.c2sUrl, "prosody-component": prosody.componentUrl },
    fileServers: [prosody.httpUrl],
    accounts: [{ network: "xmpp", instance: "bpol", agency: "bpol", user, password, server }],
    try: [
      {
        description: `as Bundespolizei: log in with any XMPP client (Gajim, Dino, profanity) to ${server} as ${user}, join einsatz@${prosody.mucDomain}, and write; it reaches the linked Stashcat and Tchap conversations`,
        command: `profanity  # then: /connect ${user} server 127.0.0.1 port ${prosody.c2sPort} tls disable   and   /join einsatz@${prosody.mucDomain}`,
      },
    ],
    stop: () => prosody.stop(),
  };
}
