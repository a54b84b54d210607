/** Structured JSON logs (pino). Secrets are redacted by path, so a logged config or request never shows them. */
import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

const redact = {
  paths: [
    "password",
    "token",
    "*.password",
    "*.token",
    "*.*.password",
    "*.*.token",
    "headers.authorization",
    "req.headers.authorization",
    "authorization",
  ],
  censor: "[redacted]",
};

export function createLogger(level: LevelWithSilent = "info", name = "fedgate"): Logger {
  return pino({ name, level, redact, base: { pid: process.pid } });
}
