import { describe, expect, it } from "vitest";
import { KeyedSequencer } from "../../../gateway/platform/bus/KeyedSequencer.js";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe("KeyedSequencer - order per key, concurrency across keys", () => {
  it("KeyedSequencer - tasks of one key run one at a time in the order given", async () => {
    const sequencer = new KeyedSequencer();
    const log: string[] = [];
    let running = 0;
    let maxRunning = 0;
    for (const [i, delay] of [5, 1, 3, 0].entries()) {
      sequencer.run("room", async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(delay);
        log.push(`t${i}`);
        running--;
      });
    }
    await sequencer.idle();
    expect(log).toEqual(["t0", "t1", "t2", "t3"]);
    expect(maxRunning).toBe(1);
  });

  it("KeyedSequencer - different keys run at the same time", async () => {
    const sequencer = new KeyedSequencer();
    let running = 0;
    let maxRunning = 0;
    for (const key of ["a", "b", "c"]) {
      sequencer.run(key, async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await sleep(5);
        running--;
      });
    }
    await sequencer.idle();
    expect(maxRunning).toBe(3);
  });

  it("KeyedSequencer - a failing task does not stop the tasks queued behind it", async () => {
    const sequencer = new KeyedSequencer();
    const log: string[] = [];
    sequencer.run("k", () => Promise.reject(new Error("boom")));
    sequencer.run("k", () => {
      log.push("after");
      return Promise.resolve();
    });
    await sequencer.idle();
    expect(log).toEqual(["after"]);
  });
});
