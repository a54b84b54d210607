import type { Logger } from "pino";
import { credsAuthenticator, nkeyAuthenticator, type Authenticator } from "@nats-io/transport-node";
import { ConfigError, FedgateError } from "../../../schemas/contract/errors.js";
import type { LoadedConfig } from "../config/loadConfig.js";
import { resolveSecret } from "../config/secrets.js";
import { JetStreamBus } from "./JetStreamBus.js";

type NatsConfig = LoadedConfig["config"]["nats"];

/** Connects to NATS as the config says; secrets are resolved here and never logged. */
export async function connectBus(loaded: LoadedConfig, log: Logger, name: string): Promise<JetStreamBus> {
  const nats = loaded.config.nats;
  const read = (path: string, pointer: string): Promise<string> =>
    resolveSecret({ file: path }, loaded.file, pointer);
  const tls = nats.tls;
  try {
    return await JetStreamBus.connect({
      servers: nats.url,
      log,
      name,
      replicas: nats.replicas,
      streamLimits: nats.streams,
      duplicateWindowMs: loaded.config.gateway.duplicateWindowMs,
      ...(nats.user === undefined ? {} : { user: nats.user }),
      ...(nats.password === undefined
        ? {}
        : { password: await resolveSecret(nats.password, loaded.file, "/nats/password") }),
      ...(nats.token === undefined
        ? {}
        : { token: await resolveSecret(nats.token, loaded.file, "/nats/token") }),
      ...(await authenticator(loaded, read)),
      ...(tls === undefined
        ? {}
        : {
            tls: {
              ...(tls.caFile === undefined ? {} : { ca: await read(tls.caFile, "/nats/tls/caFile") }),
              ...(tls.certFile === undefined ? {} : { cert: await read(tls.certFile, "/nats/tls/certFile") }),
              ...(tls.keyFile === undefined ? {} : { key: await read(tls.keyFile, "/nats/tls/keyFile") }),
            },
          }),
    });
  } catch (error) {
    if (error instanceof FedgateError && error.code === "FG_BUS_TLS_REJECTED")
      throw new ConfigError(
        loaded.file,
        tls?.caFile === undefined ? "/nats/tls" : "/nats/tls/caFile",
        error.message,
        {
          code: error.code,
          cause: error,
        },
      );
    if (error instanceof FedgateError && error.code === "FG_BUS_AUTH_REJECTED")
      throw new ConfigError(loaded.file, credentialPointer(nats), error.message, {
        code: error.code,
        cause: error,
      });
    throw error;
  }
}

/** The login of a .creds file or an nkey seed, when the config names one. */
async function authenticator(
  loaded: LoadedConfig,
  read: (path: string, pointer: string) => Promise<string>,
): Promise<{ authenticator?: Authenticator }> {
  const nats = loaded.config.nats;
  const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
  if (nats.credsFile !== undefined)
    return { authenticator: credsAuthenticator(bytes(await read(nats.credsFile, "/nats/credsFile"))) };
  if (nats.nkeySeed !== undefined)
    return {
      authenticator: nkeyAuthenticator(
        bytes(await resolveSecret(nats.nkeySeed, loaded.file, "/nats/nkeySeed")),
      ),
    };
  return {};
}

/** The config key of the credentials NATS refused. */
function credentialPointer(nats: NatsConfig): string {
  if (nats.credsFile !== undefined) return "/nats/credsFile";
  if (nats.nkeySeed !== undefined) return "/nats/nkeySeed";
  if (nats.token !== undefined) return "/nats/token";
  if (nats.password !== undefined) return "/nats/password";
  return nats.user === undefined ? "/nats" : "/nats/user";
}
