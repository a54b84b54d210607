/**
 * The console in a real headless Chromium, against a gateway process and NATS: an agency admin logs in,
 * sees its link healthy, pauses it and sees a message denied as paused, resumes it and sees the next one
 * delivered; then a bridge for one side starts, and the page shows its connection, stalls, reconnects and
 * the lag of its deliveries. Screenshots of each step are kept under test-artifacts/console/.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import type { Link, NormalisedEvent } from "../../schemas/types.js";
import { subjects } from "../../schemas/contract/subjects.js";
import { JetStreamBus } from "../../gateway/platform/bus/JetStreamBus.js";
import { encodeJson } from "../../gateway/platform/bus/KeyValueStore.js";
import { createLogger } from "../../gateway/platform/log.js";
import { ConnectionWatch } from "../../bridges/kit/ConnectionWatch.js";
import { startAdapter } from "../../bridges/kit/startAdapter.js";
import { freePort } from "../harness/servers/serverProcess.js";
import { eventually, matrixRoom, writeGatewayConfig, xmppRoom } from "../helpers/fixtures.js";
import { startNatsOrSkip } from "../helpers/nats.js";
import { repoRoot, runFedgate, type FedgateProcess } from "../helpers/processes.js";

const nats = await startNatsOrSkip();
const artifacts = join(repoRoot, "test-artifacts", "console");
const operatorToken = "console-operator-token-41c9";
const bpolToken = "console-bpol-token-7e02";
const link: Link = {
  id: "bpol-dinum",
  endpoints: [
    { ...xmppRoom, conversation: "console@conference.bpol.localhost" },
    { ...matrixRoom, conversation: "!console:tchap.localhost" },
  ],
};
const [from, to] = link.endpoints;
const log = createLogger("warn");

describe.skipIf(nats === undefined)("console - in headless Chromium", () => {
  let gateway: FedgateProcess | undefined;
  let bus: JetStreamBus | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let base = "";

  beforeAll(async () => {
    if (nats === undefined) return;
    await mkdir(artifacts, { recursive: true });
    const port = await freePort();
    base = `http://127.0.0.1:${String(port)}`;
    const config = await writeGatewayConfig(nats.url, {
      admin: {
        host: "127.0.0.1",
        port,
        token: { value: operatorToken },
        agencyTokens: { bpol: { value: bpolToken } },
      },
      links: [],
    });
    gateway = runFedgate(["gateway", "--config", config]);
    await eventually(
      async () => ((await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined),
      30_000,
      "the gateway ready",
    );
    // The agency's admin creates the link through /v1, as its own tooling would.
    const created = await fetch(`${base}/v1/links`, {
      method: "POST",
      headers: { authorization: `Bearer ${bpolToken}`, "content-type": "application/json" },
      body: JSON.stringify(link),
    });
    expect(created.status).toBe(201);
    bus = await JetStreamBus.connect({ servers: nats.url, log });
    // Root cannot use Chromium's sandbox; as anyone else it stays on.
    browser = await chromium.launch({
      executablePath: process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium",
      headless: true,
      args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await bus?.close();
    gateway?.child.kill("SIGKILL");
    await nats?.stop();
  });

  /** Publishes a message from the link's XMPP room, as `fedgate events send` does; returns its event id. */
  async function send(text: string): Promise<string> {
    const event: NormalisedEvent = {
      specVersion: "1",
      id: randomUUID(),
      type: "message.created",
      source: {
        network: from.network,
        instance: from.instance,
        conversation: from.conversation,
        messageId: randomUUID(),
      },
      sender: { userId: "weber@bpol.localhost", displayName: "Kommissarin Weber" },
      content: { body: text },
      timestamp: new Date().toISOString(),
    };
    await bus?.publish(subjects.inbound(event.source), encodeJson(event), { msgId: event.id });
    return event.id;
  }

  /** The decision row of an event on the decisions page, reloaded until it shows. */
  async function decisionOf(eventId: string): Promise<{ decision: string; reason: string }> {
    return await eventually(
      async () => {
        await page.goto(`${base}/console/decisions`);
        const row = page.locator("#decisions tbody tr", { hasText: eventId });
        if ((await row.count()) === 0) return undefined;
        return {
          decision: (await row.first().locator("td").nth(6).innerText()).trim(),
          reason: (await row.first().locator("td").nth(7).innerText()).trim(),
        };
      },
      15_000,
      `the decision on ${eventId}`,
    );
  }

  const shot = (name: string): Promise<Buffer> =>
    page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  const linkRow = () => page.locator(`#links tr[data-link="${link.id}"]`);

  it("console - log in, see the link healthy, pause it, a message is denied as paused, resume, the next is delivered", async () => {
    await page.goto(`${base}/console/`);
    expect(page.url()).toBe(`${base}/console/login`);
    await shot("01-login");
    await page.fill('input[name="token"]', "not-a-token");
    await page.click('button[type="submit"]');
    expect(await page.locator("#login-error").innerText()).toContain("not valid");
    await page.fill('input[name="token"]', bpolToken);
    await page.click('button[type="submit"]');
    expect(page.url()).toBe(`${base}/console/links`);

    const first = await send("before the pause");
    expect(await decisionOf(first)).toEqual({ decision: "deliver", reason: "allowed" });
    await page.goto(`${base}/console/links`);
    await expect.poll(() => linkRow().locator(".health").innerText()).toBe("healthy");
    expect(await linkRow().locator("td").nth(1).innerText()).toBe("active");
    expect(await linkRow().innerText()).toContain("operator-approved");
    await shot("02-link-healthy");

    await linkRow().getByRole("button", { name: "Pause" }).click();
    expect(await linkRow().locator("td").nth(1).innerText()).toBe("paused");
    await shot("03-link-paused");
    const during = await send("during the pause");
    expect(await decisionOf(during)).toEqual({ decision: "deny", reason: "link-paused" });
    await shot("04-denied-as-paused");

    await page.goto(`${base}/console/links`);
    await linkRow().getByRole("button", { name: "Resume" }).click();
    expect(await linkRow().locator("td").nth(1).innerText()).toBe("active");
    const after = await send("after the pause");
    expect(await decisionOf(after)).toEqual({ decision: "deliver", reason: "allowed" });
    await shot("05-delivered-again");
    await page.goto(`${base}/console/links`);
    await expect.poll(() => linkRow().locator(".health").innerText()).toBe("healthy");
    await shot("06-link-healthy-again");
  }, 120_000);

  it("console - a link's bridges: one connected, with its stall and reconnect and its deliveries' lag; the other not reporting", async () => {
    if (bus === undefined) return;
    const bridgeBus = bus;
    // The Matrix side's bridge, built on the kit: round trips to NATS stand in for its server, which freezes
    // once (a stall; the reconnection finds it answering again), and its first delivery hangs.
    let frozen = false;
    const watch: ConnectionWatch = new ConnectionWatch(
      {
        ping: async () => {
          if (frozen) await new Promise(() => undefined);
          if (!(await bridgeBus.answers(1000))) throw new Error("NATS does not answer");
        },
        reconnect: () => {
          frozen = false;
          watch.disconnectedNow();
          watch.connectedNow();
          return Promise.resolve();
        },
      },
      { network: to.network, instance: to.instance, log, check: { intervalMs: 300, timeoutMs: 200 } },
    );
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const bridge = await startAdapter(
      bridgeBus,
      {
        network: to.network,
        instance: to.instance,
        open: () =>
          Promise.resolve({
            deliver: async () => {
              await held;
              return undefined;
            },
            close: () => Promise.resolve(),
            connection: watch,
          }),
      },
      log,
    );
    try {
      frozen = true;
      await expect.poll(() => watch.record.reconnects, { timeout: 10_000 }).toBe(1);
      const endpoint = (e: typeof from) =>
        linkRow().locator(`.endpoint[data-instance="${e.network}.${e.instance}"]`);
      // The two messages delivered to Matrix before wait for this bridge: one in hand, one not given yet. The
      // console reads the lag at most every 15 s.
      await expect
        .poll(
          async () => {
            await page.goto(`${base}/console/links`);
            return (await endpoint(to).innerText()).replace(/\s+/g, " ");
          },
          { timeout: 40_000, interval: 1000 },
        )
        .toMatch(/bridge: connected, 1 stall, 1 reconnect since .* deliveries: 1 pending, 1 unacknowledged$/);
      expect(await endpoint(to).locator(".bridge-state").getAttribute("class")).toContain("bridge-connected");
      const other = (await endpoint(from).innerText()).replace(/\s+/g, " ");
      expect(other).toContain("bridge: not reporting");
      expect(other).toContain("deliveries: none consumed yet");
      expect(await linkRow().innerText()).not.toContain("not measured");
      await shot("07-link-bridges");
    } finally {
      release();
      await bridge.stop();
    }
  }, 90_000);
});
