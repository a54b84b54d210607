import type { Logger } from "pino";
import type { LoadedConfig } from "../config/loadConfig.js";
import { resolveSecret } from "../config/secrets.js";
import { JetStreamBus } from "./JetStreamBus.js";

/** Connects to NATS as the config says; secrets are resolved here and never logged. */
export async function connectBus(loaded: LoadedConfig, log: Logger, name: string): Promise<JetStreamBus> {
  const nats = loaded.config.nats;
  return JetStreamBus.connect({
    servers: nats.url,
    log,
    name,
    replicas: nats.replicas,
    duplicateWindowMs: loaded.config.gateway.duplicateWindowMs,
    ...(nats.user === undefined ? {} : { user: nats.user }),
    ...(nats.password === undefined
      ? {}
      : { password: await resolveSecret(nats.password, loaded.file, "/nats/password") }),
    ...(nats.token === undefined
      ? {}
      : { token: await resolveSecret(nats.token, loaded.file, "/nats/token") }),
  });
}
