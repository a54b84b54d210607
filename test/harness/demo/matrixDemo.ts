/**
 * The Matrix side of the demo: a Synapse for the Ministère de l'Intérieur on Tchap, with one official's
 * account and the operations room, the bridge's bot invited to it.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { request } from "undici";
import { freePort } from "../servers/serverProcess.js";
import { PermanentError } from "../../../schemas/contract/errors.js";
import type { Logger } from "../../../gateway/platform/log.js";
import type { DemoPart } from "./demoParts.js";
import type { MatrixBridgeConfig } from "../../../bridges/matrix/config.types.js";
import type { ConfigInput } from "../configInput.js";
import { generateRegistration } from "../../../bridges/matrix/registration.js";
import { LocalSynapse } from "../servers/matrix/LocalSynapse.js";

const serverName = "tchap.localhost";

export async function startMatrixDemo(dir: string, log: Logger): Promise<DemoPart> {
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
    };
    const sendPath = `/_matrix/client/v3/rooms/${encodeURIComponent(room)}/send/m.room.message/$(date +%s%N)`;
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
      try: [
        {
          description: `as Ministère de l'Intérieur: log in with a Matrix client (Element) to ${synapse.baseUrl} as ${claire.userId}, open "Einsatz (fedgate demo)", and write; XMPP officers' messages arrive there from their ghosts`,
          command: `curl -s -X PUT -H "Authorization: Bearer ${claire.accessToken}" -d '{"msgtype":"m.text","body":"Bonjour de Paris"}' "${synapse.baseUrl}${sendPath}"`,
        },
      ],
      stop: () => synapse.stop(),
    };
  } catch (error) {
    await synapse.stop();
    throw error;
  }
}
