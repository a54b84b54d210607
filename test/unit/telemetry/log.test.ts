import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../gateway/platform/log.js";

describe("log - secrets never reach the log", () => {
  it("log - passwords, tokens and authorization headers are redacted wherever they sit", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = createLogger("info", "test", sink);
    log.info({ nats: { url: "nats://x", password: "hunter2", token: "tok-123" } }, "config");
    log.info({ config: { admin: { token: { value: "admin-secret" } } } }, "nested");
    log.warn({ req: { headers: { authorization: "Bearer abc.def" } } }, "request");
    const text = lines.join("");
    for (const secret of ["hunter2", "tok-123", "admin-secret", "abc.def"])
      expect(text).not.toContain(secret);
    expect(text).toContain("[redacted]");
    expect(text).toContain("nats://x");
  });

  it("log - the logger is pino's, so levels filter as configured", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = createLogger("warn", "test", sink);
    log.info("hidden");
    log.warn("shown");
    expect(lines).toHaveLength(1);
    expect(pino.levels.values["warn"]).toBe(40);
  });
});
