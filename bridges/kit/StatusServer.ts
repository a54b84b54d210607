/**
 * A bridge's probes and metrics (GET /healthz, /readyz, /metrics) on bridges.<network>.status: an address of
 * their own, apart from anything the bridge serves its network, so that neither is reachable from the other's
 * side. Ready means: NATS answers, the bridge's server answers (see ConnectionWatch), deliveries are consumed.
 */
import type { StatusListen } from "../../schemas/types.js";
import { HttpListener } from "../../gateway/platform/http/HttpListener.js";
import { answerProbe, type Readiness } from "../../gateway/platform/http/probes.js";
import type { Logger } from "../../gateway/platform/log.js";

export async function startStatusServer(
  listen: StatusListen,
  readiness: Readiness,
  log: Logger,
): Promise<HttpListener> {
  const listener = await HttpListener.listen(
    (request, response) => {
      if (answerProbe(request, response, readiness, log)) return;
      response.statusCode = 404;
      response.end();
    },
    {
      host: listen.host,
      port: listen.port,
      what: "status endpoint",
      log,
      // A probe that cannot answer this fast has failed anyway.
      headersTimeoutMs: 5000,
      requestTimeoutMs: 10_000,
    },
  );
  log.info({ url: listener.url }, "probes and metrics served");
  return listener;
}
