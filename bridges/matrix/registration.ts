/**
 * The application service registration the Matrix bridge hands to Synapse (`app_service_config_files`):
 * fresh random tokens, exclusive namespaces for the bridge's ghosts (puppets) and their aliases, and the
 * opt-ins an encrypting bridge needs (Synapse reads `receive_ephemeral`, `org.matrix.msc3202` and
 * `io.element.msc4190`).
 */
import { randomBytes } from "node:crypto";
import { parse, stringify } from "yaml";
import { ConfigError, PermanentError } from "../../schemas/contract/errors.js";

export interface RegistrationOptions {
  /** The AS's id at the homeserver; unique among its registrations. */
  id: string;
  /** Where the homeserver reaches the AS endpoint, e.g. http://bridge.internal:9000. */
  url: string;
  /** The homeserver's name, the part after the colon in user IDs. */
  serverName: string;
  /** The bridge bot's localpart; default "fedgate". */
  senderLocalpart?: string;
  /** Localpart prefix of every ghost and alias the bridge owns; default "fedgate_". */
  ghostPrefix?: string;
}

export interface Namespace {
  exclusive: boolean;
  regex: string;
}

/** The registration as the Matrix AS spec names its keys. */
export interface AppServiceRegistration {
  id: string;
  url: string;
  as_token: string;
  hs_token: string;
  sender_localpart: string;
  rate_limited: boolean;
  namespaces: { users: Namespace[]; aliases: Namespace[]; rooms: Namespace[] };
  /** Ephemeral events in transactions; with them (MSC2409/MSC4203) the to-device messages for its devices. */
  receive_ephemeral?: boolean;
  /** MSC3202: device list changes and one-time-key counts of its users' devices in transactions. */
  "org.matrix.msc3202"?: boolean;
  /** MSC4190: it creates its users' devices itself (PUT /devices/{deviceId}), and never logs in for them. */
  "io.element.msc4190"?: boolean;
}

/**
 * The registration's opt-ins an encrypting bridge needs: to-device messages (MSC2409/MSC4203), device lists
 * and key counts (MSC3202), and devices it makes itself (MSC4190).
 */
export const ENCRYPTION_OPT_INS = ["receive_ephemeral", "org.matrix.msc3202", "io.element.msc4190"] as const;

export interface GeneratedRegistration {
  registration: AppServiceRegistration;
  /** The same, as the YAML file Synapse reads. */
  yaml: string;
}

// Matrix's historical localpart grammar, which every homeserver accepts.
const localpartPattern = /^[a-z0-9._=\-/+]+$/;

/** A literal for a regex: Synapse compiles these with Python's `re`, which escapes the same characters. */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function invalid(problem: string): PermanentError {
  return new PermanentError("FG_CONFIG_INVALID", `application service registration: ${problem}`);
}

export function generateRegistration(options: RegistrationOptions): GeneratedRegistration {
  const { id, url, serverName, senderLocalpart = "fedgate", ghostPrefix = "fedgate_" } = options;
  if (id.trim() === "") throw invalid("id must not be empty");
  if (serverName.trim() === "" || /\s/.test(serverName))
    throw invalid(`server name ${JSON.stringify(serverName)} is not a host name`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid(`url ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw invalid(`url ${JSON.stringify(url)} must be http or https`);
  if (!localpartPattern.test(senderLocalpart))
    throw invalid(`sender localpart ${JSON.stringify(senderLocalpart)} is not a valid localpart`);
  if (!localpartPattern.test(ghostPrefix))
    throw invalid(`ghost prefix ${JSON.stringify(ghostPrefix)} is not a valid localpart prefix`);
  // Otherwise the bot would sit in the ghosts' namespace and be taken for a puppet.
  if (senderLocalpart.startsWith(ghostPrefix))
    throw invalid(`sender localpart ${senderLocalpart} must not start with the ghost prefix ${ghostPrefix}`);

  // Synapse matches from the start only (Python's re.match): the `$` keeps other servers' IDs that merely
  // begin with this server's name out of the exclusive namespace.
  const server = escapeRegex(serverName);
  const prefix = escapeRegex(ghostPrefix);
  const registration: AppServiceRegistration = {
    id,
    url,
    as_token: randomBytes(32).toString("base64url"),
    hs_token: randomBytes(32).toString("base64url"),
    sender_localpart: senderLocalpart,
    rate_limited: false,
    namespaces: {
      users: [{ exclusive: true, regex: `@${prefix}.*:${server}$` }],
      aliases: [{ exclusive: true, regex: `#${prefix}.*:${server}$` }],
      rooms: [],
    },
    // What encrypted rooms need (see bridges/matrix/crypto): harmless for a bridge of plain rooms, which
    // ignores the extra fields of its transactions, so that turning encryption on needs no new registration.
    ...Object.fromEntries(ENCRYPTION_OPT_INS.map((optIn) => [optIn, true])),
  };
  return { registration, yaml: stringify(registration) };
}

/**
 * Reads a registration file's text (as generateRegistration writes it, or as an admin adapted it); throws a
 * ConfigError naming the file and the key for anything the bridge cannot work with. Tokens never appear in
 * the error.
 */
export function parseRegistration(text: string, file: string): AppServiceRegistration {
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (cause) {
    throw new ConfigError(file, "", "is not YAML", { cause });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new ConfigError(file, "", "is not a registration (a YAML mapping)");
  const doc = parsed as Record<string, unknown>;
  for (const key of ["id", "url", "as_token", "hs_token", "sender_localpart"]) {
    const value = doc[key];
    if (typeof value !== "string" || value === "")
      throw new ConfigError(file, `/${key}`, "must be a non-empty string");
  }
  const users = (doc["namespaces"] as { users?: unknown } | undefined)?.users;
  if (!Array.isArray(users) || users.length === 0)
    throw new ConfigError(file, "/namespaces/users", "must list the ghosts' namespace");
  for (const [index, namespace] of (users as unknown[]).entries()) {
    const ns = namespace as Partial<Namespace> | null;
    if (typeof ns?.regex !== "string" || typeof ns.exclusive !== "boolean")
      throw new ConfigError(file, `/namespaces/users/${String(index)}`, "must have regex and exclusive");
  }
  return doc as unknown as AppServiceRegistration;
}
