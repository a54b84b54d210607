/**
 * The connection watch's rules, on a server whose answers the test decides: a missed round trip on an open
 * connection is a stall and reconnects; one while the adapter knows it is down only asks to reconnect; a
 * connection that comes back is ready at once and counted as a reconnect.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConnectionWatch } from "../../../bridges/kit/ConnectionWatch.js";
import { createLogger } from "../../../gateway/platform/log.js";

const check = { intervalMs: 1000, timeoutMs: 500 };

/** A server that answers while `answering`, or never. */
function fakeServer() {
  const server = {
    answering: true,
    reconnects: 0,
    ping: (): Promise<void> => (server.answering ? Promise.resolve() : new Promise<void>(() => undefined)),
    reconnect: (): Promise<void> => {
      server.reconnects++;
      return Promise.resolve();
    },
  };
  return server;
}

describe("ConnectionWatch", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a round trip not answered in time on an open connection is a stall: not ready, counted, reconnected", async () => {
    const server = fakeServer();
    const watch = new ConnectionWatch(server, {
      network: "xmpp",
      instance: "bpol",
      log: createLogger("silent"),
      check,
    });
    watch.start();
    await vi.advanceTimersByTimeAsync(check.intervalMs);
    expect(watch.ready).toBe(true);

    server.answering = false;
    await vi.advanceTimersByTimeAsync(check.intervalMs + check.timeoutMs);
    expect(watch.ready).toBe(false);
    expect(watch.record).toMatchObject({ connected: true, answering: false, stalls: 1 });
    expect(server.reconnects).toBe(1);

    // The adapter's connection drops and comes back: ready at once, one reconnect.
    watch.disconnectedNow();
    await vi.advanceTimersByTimeAsync(check.intervalMs + check.timeoutMs);
    // Missed while known to be down: asked to reconnect again, but no stall.
    expect(watch.record).toMatchObject({ stalls: 1 });
    expect(server.reconnects).toBe(2);
    server.answering = true;
    watch.connectedNow();
    expect(watch.ready).toBe(true);
    expect(watch.record).toMatchObject({ connected: true, answering: true, reconnects: 1 });
    watch.stop();
  });

  it("stops asking once stopped", async () => {
    const server = fakeServer();
    const ping = vi.spyOn(server, "ping");
    const watch = new ConnectionWatch(server, {
      network: "stashcat",
      instance: "ni",
      log: createLogger("silent"),
      check,
    });
    watch.start();
    await vi.advanceTimersByTimeAsync(check.intervalMs * 3);
    const asked = ping.mock.calls.length;
    expect(asked).toBe(3);
    watch.stop();
    await vi.advanceTimersByTimeAsync(check.intervalMs * 3);
    expect(ping.mock.calls.length).toBe(asked);
  });
});
