/** A process's probes as a kubelet reads them: the HTTP status of /healthz or /readyz, and how soon it changes. */
import { eventually } from "./fixtures.js";

/** The status `base``path` answers with; 0 when it does not answer within 2 s. */
export async function probe(base: string, path: "/healthz" | "/readyz"): Promise<number> {
  try {
    return (await fetch(`${base}${path}`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

/** Milliseconds until `base`/readyz answers `expected`; rejects naming `what` after timeoutMs. */
export async function readyzTurns(
  base: string,
  expected: number,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = Date.now();
  await eventually(
    async () => ((await probe(base, "/readyz")) === expected ? true : undefined),
    timeoutMs,
    what,
  );
  return Date.now() - started;
}
