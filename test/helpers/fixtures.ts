/** Shared test data: the example policy, a three-network link, event builders. */
import type { ConfigInput } from "../harness/configInput.js";
import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import type { AuditRecord, Config, Endpoint, Link, NormalisedEvent } from "../../schemas/types.js";
import { schemaDir, validateAuditBatch } from "../../schemas/contract/schemas.js";
import { scratchDir } from "./scratchDir.js";

export const examplePolicyFile = join(schemaDir, "examples", "policy.yaml");

export const xmppRoom: Endpoint = {
  network: "xmpp",
  instance: "bpol",
  conversation: "lage@conference.bpol.localhost",
  agency: "bpol",
};
export const stashcatChannel: Endpoint = {
  network: "stashcat",
  instance: "ni",
  conversation: "channel:1001",
  agency: "polizei-ni",
};
export const matrixRoom: Endpoint = {
  network: "matrix",
  instance: "tchap",
  conversation: "!lage:tchap.localhost",
  agency: "dinum-mi",
};

export const crossBorderLink: Link = { id: "lage", endpoints: [xmppRoom, stashcatChannel, matrixRoom] };

/** A message.created event from `from`, with any field overridden. */
export function message(from: Endpoint, body: string, extra: Partial<NormalisedEvent> = {}): NormalisedEvent {
  return {
    specVersion: "1",
    id: randomUUID(),
    type: "message.created",
    source: {
      network: from.network,
      instance: from.instance,
      conversation: from.conversation,
      messageId: `native-${randomUUID()}`,
    },
    sender: { userId: `user-of-${from.agency}`, displayName: "Test Officer" },
    content: { body },
    timestamp: new Date().toISOString(),
    ...extra,
  };
}

/** Writes a gateway config into a new temporary folder and returns its path. */
export async function writeGatewayConfig(
  natsUrl: string,
  overrides: ConfigInput<Config> = {},
): Promise<string> {
  const dir = await scratchDir("test");
  const config: ConfigInput<Config> = {
    nats: { url: natsUrl },
    gateway: { policyFile: examplePolicyFile, ackWaitMs: 2000 },
    log: { level: "warn" },
    links: [crossBorderLink],
    ...overrides,
  };
  const file = join(dir, "config.yaml");
  await writeFile(file, stringify(config));
  return file;
}

/** Polls until check() returns a value other than undefined, or fails after timeoutMs. */
export async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The audit records in one message of the audit stream, checked against the schema. */
export function auditRecordsIn(data: Uint8Array): AuditRecord[] {
  return validateAuditBatch(JSON.parse(Buffer.from(data).toString("utf8"))).records;
}

/** The bodies of the messages among `events` whose text starts with `prefix`, in the order published. */
export function bodiesStartingWith(events: readonly NormalisedEvent[], prefix: string): string[] {
  return events
    .filter((e) => e.type === "message.created" && e.content?.body?.startsWith(prefix) === true)
    .map((e) => e.content?.body ?? "");
}
