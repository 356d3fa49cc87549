#!/usr/bin/env node
/**
 * The containers' health check: `node docker/healthcheck.mjs [/healthz|/readyz]` asks the
 * service's own HTTP server and exits 0 on a 2xx answer, 1 otherwise. Plain JavaScript with no
 * imports, because the slim image has neither curl nor wget, and a check must start fast.
 *
 * The port: PORT for the api, METRICS_PORT for a worker (the image sets APP to the service).
 *   /healthz  the process is up and serving (the image's HEALTHCHECK: liveness)
 *   /readyz   it also reaches its broker and state store (compose's healthcheck: `docker compose
 *             ps` shows a worker as unhealthy while its broker is down)
 */
const path = process.argv[2] ?? '/healthz';
const env = process.env;
const port = env.APP === 'api' ? env.PORT || '3000' : env.METRICS_PORT;

if (!port || port === '0') {
  console.error(`healthcheck: ${env.APP ?? 'this service'} serves no HTTP port (set METRICS_PORT)`);
  process.exit(1);
}

try {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(4_000) });
  if (!res.ok) console.error(`healthcheck: GET ${path} answered ${res.status}: ${(await res.text()).trim()}`);
  process.exit(res.ok ? 0 : 1);
} catch (error) {
  console.error(`healthcheck: GET ${path} on port ${port} failed: ${error.cause?.message ?? error.message}`);
  process.exit(1);
}
