/** Structured JSON logs (pino). Secrets are redacted by path, so a logged config or request never shows them. */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";

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

/** A JSON logger to stdout, or to `destination` (tests capture the output that way). */
export function createLogger(
  level: LevelWithSilent = "info",
  name = "fedgate",
  destination?: DestinationStream,
): Logger {
  const options = { name, level, redact, base: { pid: process.pid } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
