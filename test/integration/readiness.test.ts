/**
 * The core's /readyz tells the truth about NATS: it fails within a few seconds of NATS going away (killed, or
 * frozen with its connection open) and recovers on its own; /healthz, the liveness probe, stays 200 all along.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../harness/servers/serverProcess.js";
import { writeGatewayConfig } from "../helpers/fixtures.js";
import { probe, readyzTurns } from "../helpers/probes.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { runFedgate, type FedgateProcess } from "../helpers/processes.js";

const nats = await startNatsOrSkip();
/** How soon after NATS goes away /readyz must say so: Kubernetes then stops sending traffic. */
const NOTICE_MS = 5000;
/** How soon after NATS is back /readyz must recover, without a restart (reconnects are a second apart). */
const RECOVERY_MS = 15_000;

describe.skipIf(nats === undefined)("readiness - /readyz follows the NATS connection", () => {
  let gateway: FedgateProcess | undefined;
  let base = "";

  const status = (path: "/healthz" | "/readyz"): Promise<number> => probe(base, path);
  /** Milliseconds until /readyz answers `expected`. */
  const until = (expected: number, timeoutMs: number, what: string): Promise<number> =>
    readyzTurns(base, expected, timeoutMs, what);

  beforeAll(async () => {
    if (nats === undefined) return;
    const port = await freePort();
    base = `http://127.0.0.1:${String(port)}`;
    const config = await writeGatewayConfig(nats.url, {
      admin: { host: "127.0.0.1", port, token: { value: "readiness-token" } },
    });
    gateway = runFedgate(["gateway", "--config", config]);
    await until(200, 30_000, "the gateway ready");
  });

  afterAll(async () => {
    gateway?.child.kill("SIGKILL");
    await nats?.stop();
  });

  it(`readiness - NATS killed: /readyz 503 within ${NOTICE_MS / 1000} s, /healthz stays 200; NATS back: /readyz 200 again`, async () => {
    if (nats === undefined) return;
    let noticed = 0;
    await nats.restart(async () => {
      noticed = await until(503, NOTICE_MS, "/readyz 503 with NATS down");
      expect(await status("/healthz")).toBe(200);
    }, "SIGKILL");
    const recovered = await until(200, RECOVERY_MS, "/readyz 200 with NATS back");
    console.log(
      `NATS killed: /readyz 503 after ${String(noticed)} ms; back: 200 after ${String(recovered)} ms`,
    );
  });

  it(`readiness - NATS frozen with its connection open: /readyz 503 within ${NOTICE_MS / 1000} s; thawed: 200 again`, async () => {
    if (nats === undefined) return;
    await nats.signal("SIGSTOP");
    let noticed: number;
    try {
      noticed = await until(503, NOTICE_MS, "/readyz 503 with NATS frozen");
      expect(await status("/healthz")).toBe(200);
    } finally {
      await nats.signal("SIGCONT");
    }
    const recovered = await until(200, RECOVERY_MS, "/readyz 200 with NATS thawed");
    console.log(
      `NATS frozen: /readyz 503 after ${String(noticed)} ms; thawed: 200 after ${String(recovered)} ms`,
    );
  });
});
