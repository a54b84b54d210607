import { describe, expect, it } from "vitest";
import { InputQueue } from "../../../bridges/kit/InputQueue.js";

describe("InputQueue - native input per conversation, in order, bounded", () => {
  it("InputQueue - a conversation's input runs one at a time in arrival order; past the bound, input is not queued", async () => {
    const queue = new InputQueue(2);
    const done: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    expect(
      queue.offer("lage", async () => {
        await held;
        done.push("a1");
      }),
    ).toBe(true);
    expect(queue.offer("lage", () => Promise.resolve(void done.push("a2")))).toBe(true);
    // Two wait in "lage": a third is refused, while another conversation goes on.
    expect(queue.offer("lage", () => Promise.resolve(void done.push("a3")))).toBe(false);
    expect(queue.offer("einsatz", () => Promise.resolve(void done.push("b1")))).toBe(true);
    // The bridge's own work is not native input: always queued.
    queue.run("lage", () => Promise.resolve(void done.push("catch-up")));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(done).toEqual(["b1"]);
    release();
    await queue.idle();
    expect(done).toEqual(["b1", "a1", "a2", "catch-up"]);
    // Finished input no longer counts.
    expect(queue.offer("lage", () => Promise.resolve(void done.push("a4")))).toBe(true);
    await queue.idle();
    expect(done.at(-1)).toBe("a4");
  });

  it("InputQueue - with a total bound, input past it is not queued whatever its conversation", async () => {
    const queue = new InputQueue(5, 2);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    expect(queue.offer("weber claire", () => held)).toBe(true);
    expect(queue.offer("weber pierre", () => held)).toBe(true);
    expect(queue.offer("weber anne", () => Promise.resolve())).toBe(false);
    release();
    await queue.idle();
    expect(queue.offer("weber anne", () => Promise.resolve())).toBe(true);
    await queue.idle();
  });

  it("InputQueue - a failing input frees its place and does not stop the conversation", async () => {
    const queue = new InputQueue(1);
    const done: string[] = [];
    expect(queue.offer("lage", () => Promise.reject(new Error("failed")))).toBe(true);
    await queue.idle();
    expect(queue.offer("lage", () => Promise.resolve(void done.push("next")))).toBe(true);
    await queue.idle();
    expect(done).toEqual(["next"]);
  });
});
