/**
 * nats.streams: the limits of the streams fedgate creates come from the config, defaults as they always were,
 * and a changed limit reaches a stream that exists already at the next start.
 */
import { connect } from "@nats-io/transport-node";
import { jetstreamManager, type StreamConfig } from "@nats-io/jetstream";
import { afterAll, describe, expect, it } from "vitest";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { connectBus } from "../../gateway/platform/bus/connectBus.js";
import { loadConfig } from "../../gateway/platform/config/loadConfig.js";
import { createLogger } from "../../gateway/platform/log.js";
import type { ConfigInput } from "../harness/configInput.js";
import type { Config } from "../../schemas/types.js";
import { writeGatewayConfig } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";

const nats = await startNatsOrSkip();
const log = createLogger("silent");
const DAY_NS = 24 * 60 * 60 * 1e9;
const GiB = 1024 * 1024 * 1024;

/** Starts as a fedgate process does with `streams` in its config, and returns each stream's config as stored. */
async function startWith(
  streams: Record<string, Record<string, number>> | undefined,
): Promise<Record<string, StreamConfig>> {
  if (nats === undefined) throw new Error("no nats-server");
  await startFedgate(nats.url, streams);
  return storedStreams(nats.url);
}

/** Sets up the streams as a fedgate process does with `streams` in its config. */
async function startFedgate(
  url: string,
  streams: Record<string, Record<string, number>> | undefined,
): Promise<void> {
  const loaded = await loadConfig(
    // Partial sections, as a config file gives them: the schema fills in the rest.
    await writeGatewayConfig(url, {
      nats: { url, ...(streams === undefined ? {} : { streams }) },
    } as unknown as ConfigInput<Config>),
    {},
  );
  const bus = await connectBus(loaded, log, "test-stream-limits");
  try {
    await bus.ensureTopology();
  } finally {
    await bus.close();
  }
}

/** Each stream's config as NATS stores it. */
async function storedStreams(url: string): Promise<Record<string, StreamConfig>> {
  const nc = await connect({ servers: url });
  try {
    const jsm = await jetstreamManager(nc);
    const names = ["FEDGATE_INBOUND", "FEDGATE_OUTBOUND", "FEDGATE_AUDIT", "FEDGATE_DEADLETTER"];
    const stored: Record<string, StreamConfig> = {};
    for (const name of names) stored[name] = (await jsm.streams.info(name)).config;
    return stored;
  } finally {
    await nc.close();
  }
}

const limits = (c: StreamConfig | undefined): unknown => ({
  maxBytes: c?.max_bytes,
  maxMsgs: c?.max_msgs,
  maxAgeDays: (c?.max_age ?? 0) / DAY_NS,
  discard: c?.discard,
});

describe.skipIf(nats === undefined)("nats.streams - the streams' limits from the config", () => {
  afterAll(async () => {
    await nats?.stop();
  });

  it("streams - without nats.streams, each stream keeps what it always kept", async () => {
    const stored = await startWith(undefined);
    expect(limits(stored["FEDGATE_INBOUND"])).toEqual({
      maxBytes: 2 * GiB,
      maxMsgs: 5e6,
      maxAgeDays: 7,
      discard: "new",
    });
    expect(limits(stored["FEDGATE_OUTBOUND"])).toEqual({
      maxBytes: 4 * GiB,
      maxMsgs: 1e7,
      maxAgeDays: 7,
      discard: "new",
    });
    expect(limits(stored["FEDGATE_AUDIT"])).toEqual({
      maxBytes: 16 * GiB,
      maxMsgs: 5e7,
      maxAgeDays: 365,
      discard: "new",
    });
    expect(limits(stored["FEDGATE_DEADLETTER"])).toEqual({
      maxBytes: GiB,
      maxMsgs: 1e6,
      maxAgeDays: 30,
      discard: "old",
    });
  });

  it("streams - a configured limit lands on the existing stream at the next start; the others keep their defaults", async () => {
    const stored = await startWith({
      audit: { maxAgeDays: 3650, maxBytes: 8 * GiB },
      inbound: { maxMsgs: 100_000 },
    });
    expect(limits(stored["FEDGATE_AUDIT"])).toEqual({
      maxBytes: 8 * GiB,
      maxMsgs: 5e7,
      maxAgeDays: 3650,
      discard: "new",
    });
    expect(limits(stored["FEDGATE_INBOUND"])).toEqual({
      maxBytes: 2 * GiB,
      maxMsgs: 100_000,
      maxAgeDays: 7,
      discard: "new",
    });
    // A tool without the config (fedgate tail) leaves them as they are.
    if (nats === undefined) return;
    const tool = await JetStreamBus.connect({ servers: nats.url, log });
    await tool.ensureTopology();
    await tool.close();
    expect(limits((await storedStreams(nats.url))["FEDGATE_AUDIT"])).toMatchObject({ maxAgeDays: 3650 });
    // Ten minutes of de-duplication still fit in an age limit shorter than a day.
    const short = await startWith({ deadLetter: { maxAgeDays: 0.25 } });
    expect(limits(short["FEDGATE_DEADLETTER"])).toMatchObject({ maxAgeDays: 0.25 });
    expect(short["FEDGATE_DEADLETTER"]?.duplicate_window).toBe(600_000 * 1e6);
  });
});
