import { describe, expect, it } from "vitest";
import { NotStoredError, untilStored } from "../../../bridges/kit/untilStored.js";
import { PermanentError, TransientError } from "../../../schemas/contract/errors.js";
import { createLogger } from "../../../gateway/platform/log.js";

/** A logger whose lines are kept, parsed. */
function capturingLog(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger("info", "test", {
    write: (line: string) => {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return { log, lines };
}

const busAway = (): TransientError => new TransientError("FG_BUS_PUBLISH_FAILED", "cannot publish: timeout");

describe("untilStored - native input kept until the bus has stored it", () => {
  it("untilStored - a passing failure is retried after pauses that double up to the bound, until it is stored", async () => {
    const { log, lines } = capturingLog();
    let attempts = 0;
    const stored = await untilStored(
      () => {
        attempts++;
        return attempts < 5 ? Promise.reject(busAway()) : Promise.resolve("stored");
      },
      { signal: new AbortController().signal, log, firstDelayMs: 1, maxDelayMs: 4, context: { room: "r" } },
    );
    expect(stored).toBe("stored");
    expect(attempts).toBe(5);
    expect(lines.map((l) => l["retryInMs"])).toEqual([1, 2, 4, 4]);
    expect(lines.every((l) => l["room"] === "r" && l["msg"] === "not stored on the bus yet; retrying")).toBe(
      true,
    );
  });

  it("untilStored - a refusal, or a bug, is not retried", async () => {
    const { log } = capturingLog();
    const options = { signal: new AbortController().signal, log, firstDelayMs: 1 };
    let attempts = 0;
    const refusal = new PermanentError("FG_NATIVE_INVALID", "refused");
    await expect(
      untilStored(() => {
        attempts++;
        return Promise.reject(refusal);
      }, options),
    ).rejects.toBe(refusal);
    const bug = new TypeError("bug");
    await expect(
      untilStored(() => {
        attempts++;
        return Promise.reject(bug);
      }, options),
    ).rejects.toBe(bug);
    expect(attempts).toBe(2);
  });

  it("untilStored - gives up after its time, with the last failure as the cause", async () => {
    const { log } = capturingLog();
    const last = busAway();
    let attempts = 0;
    const error = await untilStored(
      () => {
        attempts++;
        return Promise.reject(last);
      },
      { signal: new AbortController().signal, log, firstDelayMs: 5, maxDelayMs: 5, giveUpAfterMs: 40 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotStoredError);
    const notStored = error as NotStoredError;
    expect(notStored.transient).toBe(true);
    expect(notStored.stopped).toBe(false);
    expect(notStored.cause).toBe(last);
    expect(notStored.code).toBe("FG_BUS_PUBLISH_FAILED");
    expect(notStored.attempts).toBe(attempts);
    expect(attempts).toBeGreaterThan(1);
  });

  it("untilStored - a stop ends a pause at once, and no attempt follows", async () => {
    const { log } = capturingLog();
    const stop = new AbortController();
    let attempts = 0;
    const waiting = untilStored(
      () => {
        attempts++;
        return Promise.reject(busAway());
      },
      { signal: stop.signal, log, firstDelayMs: 3_600_000 },
    ).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 20));
    stop.abort();
    const error = await waiting;
    expect(error).toBeInstanceOf(NotStoredError);
    expect((error as NotStoredError).stopped).toBe(true);
    expect(attempts).toBe(1);
  });

  it("untilStored - stopped already, the first attempt still runs: what the bus takes now is stored", async () => {
    const { log } = capturingLog();
    const stop = new AbortController();
    stop.abort();
    expect(await untilStored(() => Promise.resolve(1), { signal: stop.signal, log })).toBe(1);
    const error = await untilStored(() => Promise.reject(busAway()), { signal: stop.signal, log }).catch(
      (e: unknown) => e,
    );
    expect((error as NotStoredError).stopped).toBe(true);
  });
});
