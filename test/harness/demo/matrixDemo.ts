/**
 * The Matrix side of the demo: a Synapse for the Ministère de l'Intérieur on Tchap, with one official's
 * account and the operations room, the bridge's bot invited to it. The room is encrypted, as Tchap's private
 * rooms are, and the bridge encrypts (end-to-bridge), keeping its devices' keys in the demo's folder.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { request } from "undici";
import { freePort } from "../servers/serverProcess.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import type { Logger } from "../../../gateway/platform/log.js";
import type { DemoOptions, DemoPart } from "./demoParts.js";
import type { MatrixBridgeConfig } from "../../../bridges/matrix/config.types.js";
import type { ConfigInput } from "../configInput.js";
import { generateRegistration } from "../../../bridges/matrix/registration.js";
import { LocalSynapse } from "../servers/matrix/LocalSynapse.js";

const serverName = "tchap.localhost";

export async function startMatrixDemo(
  dir: string,
  log: Logger,
  options: DemoOptions = {},
): Promise<DemoPart> {
  const bridgeDir = join(dir, "matrix-bridge");
  await mkdir(bridgeDir, { recursive: true });
  const port = await freePort();
  const { registration, yaml } = generateRegistration({
    id: "fedgate-tchap",
    url: `http://127.0.0.1:${String(port)}`,
    serverName,
  });
  const registrationFile = join(bridgeDir, "registration.yaml");
  await writeFile(registrationFile, yaml, { mode: 0o600 });
  // What a Secret holds in a deployment: the key the bridge's device store is encrypted with.
  const storeKeyFile = join(bridgeDir, "store.key");
  await writeFile(storeKeyFile, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
  const synapse = await LocalSynapse.start({
    serverName,
    dir: join(dir, "synapse"),
    appServiceRegistrations: [registrationFile],
  });
  try {
    const password = randomBytes(9).toString("base64url");
    const claire = await synapse.registerUser(`claire-${randomBytes(3).toString("hex")}`, password);
    const call = async (path: string, body: unknown, method = "POST"): Promise<Record<string, unknown>> => {
      const response = await request(`${synapse.baseUrl}${path}`, {
        method: method as "POST" | "PUT",
        headers: { authorization: `Bearer ${claire.accessToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = (await response.body.json()) as Record<string, unknown>;
      if (response.statusCode !== 200)
        throw new PermanentError(
          "FG_SERVER_START_FAILED",
          `demo Synapse: ${path}: ${JSON.stringify(answer)}`,
        );
      return answer;
    };
    await call(
      `/_matrix/client/v3/profile/${encodeURIComponent(claire.userId)}/displayname`,
      { displayname: "Claire Martin" },
      "PUT",
    );
    const bot = `@${registration.sender_localpart}:${serverName}`;
    // The bot joins when the bridge starts; the room is linked by its id.
    const { room_id: room } = await call("/_matrix/client/v3/createRoom", {
      preset: "private_chat",
      name: "Einsatz (fedgate demo)",
      topic: "Cross-border operations room, bridged by fedgate",
      invite: [bot],
      ...(options.plainTchapRoom === true
        ? {}
        : {
            initial_state: [
              { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
            ],
          }),
    });
    if (typeof room !== "string")
      throw new PermanentError("FG_SERVER_START_FAILED", "demo Synapse made no room");
    log.info({ room, official: claire.userId }, "demo Synapse started");
    const config: ConfigInput<MatrixBridgeConfig> = {
      instance: "tchap",
      homeserverUrl: synapse.baseUrl,
      serverName,
      registrationFile,
      listen: { host: "127.0.0.1", port },
      agency: "dinum-mi",
      encryption: { enabled: true, storeFile: join(bridgeDir, "crypto.store"), storeKeyFile },
    };
    const sendPath = `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/m.room.message/$(date +%s%N)`;
    const keysQuery = JSON.stringify({ device_keys: { [bot]: [] } });
    return {
      config: { ...config },
      conversation: room,
      servers: { synapse: synapse.baseUrl, "matrix-bridge": `http://127.0.0.1:${String(port)}` },
      // The bridge's media links (its publicUrl is the registration's url).
      fileServers: [`http://127.0.0.1:${String(port)}`],
      accounts: [
        {
          network: "matrix",
          instance: "tchap",
          agency: "dinum-mi",
          user: claire.userId,
          password,
          server: synapse.baseUrl,
        },
      ],
      try:
        options.plainTchapRoom === true
          ? [
              {
                description: `as Ministère de l'Intérieur: log in with a Matrix client (Element) to ${synapse.baseUrl} as ${claire.userId}, open "Einsatz (fedgate demo)", and write; XMPP officers' messages arrive there from their ghosts`,
                command: `curl -s -X PUT -H "Authorization: Bearer ${claire.accessToken}" -d '{"msgtype":"m.text","body":"Bonjour de Paris"}' "${synapse.baseUrl}${sendPath}"`,
              },
            ]
          : [
              {
                description: `as Ministère de l'Intérieur: "Einsatz (fedgate demo)" is end-to-end encrypted, as Tchap's private rooms are; log in with a Matrix client that encrypts (Element: it just works, nothing to set up) to ${synapse.baseUrl} as ${claire.userId}, open the room, and write; XMPP and Stashcat officers' messages arrive there encrypted, each by its ghost's own device. The bridge decrypts only inside the gateway. Its devices are listed in the members' details (the bot's "fedgate bridge", and one per ghost); a plain curl message would not be encrypted, so write from the client`,
                command: `curl -s -X POST -H "Authorization: Bearer ${claire.accessToken}" -d '${keysQuery}' "${synapse.baseUrl}/_matrix/client/v3/keys/query"   # the bot's devices and their keys`,
              },
            ],
      stop: () => synapse.stop(),
    };
  } catch (error) {
    await synapse.stop();
    throw error;
  }
}
