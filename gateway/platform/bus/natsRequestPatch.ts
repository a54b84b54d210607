/**
 * A local fix to @nats-io/nats-core 3.4.0: a request that got its answer still builds an Error.
 *
 * `RequestOne.resolver` resolves the request and then calls `cancel()`, which rejects the (already settled)
 * promise with `new RequestError("cancelled")`: an Error, with its stack trace, after every successful request,
 * though `noAsyncTraces` is set. Every JetStream publish and key-value write is such a request; in the core the
 * discarded errors were 5–8 % of its CPU. The fix lets a successful request skip only that rejection: the
 * timer, the mux entry and every error path stay as the library has them.
 *
 * It is applied only to the version it was written against (checked by test/unit/bus/natsRequestPatch.test.ts);
 * any other version runs unpatched. The same change is proposed upstream (nats-io/nats.js, request.ts:
 * `cancel()` should reject only a request that is still pending).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { RequestOne } from "@nats-io/nats-core/internal";
import type { Msg } from "@nats-io/nats-core";

/** The nats-core version whose RequestOne this replaces a method of. */
export const PATCHED_NATS_CORE = "3.4.0";

let applied: boolean | undefined;

/** The installed @nats-io/nats-core version. */
export function natsCoreVersion(): string {
  // Its package.json is not among the package's exports: find it next to the entry point.
  const entry = createRequire(import.meta.url).resolve("@nats-io/nats-core");
  const manifest = JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")) as {
    version: string;
  };
  return manifest.version;
}

/** Applies the fix once; resolves whether it is in place (false on any other nats-core version). */
export function patchNatsRequest(): boolean {
  if (applied !== undefined) return applied;
  applied = natsCoreVersion() === PATCHED_NATS_CORE;
  if (!applied) return false;
  // Called with the request as `this`, as the library calls it.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const original = RequestOne.prototype.resolver;
  RequestOne.prototype.resolver = function resolver(this: RequestOne, err: Error | null, msg: Msg): void {
    if (err !== null) {
      original.call(this, err, msg);
      return;
    }
    // What the original does on success, without cancel()'s rejection of a promise already resolved.
    this.timer.cancel();
    this.deferred.resolve(msg);
    this.mux.cancel(this);
  };
  return true;
}
