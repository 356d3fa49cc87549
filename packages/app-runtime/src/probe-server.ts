import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface ProbeServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** Throws when a dependency is unreachable; /readyz answers 503 with the message. */
  ready: () => Promise<void>;
}

/**
 * A worker's /metrics, /healthz and /readyz, on node:http (a worker needs no framework).
 * Prometheus scrapes each worker process; the API serves the same paths with express.
 */
export async function startProbeServer(
  options: ProbeServerOptions,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return reply(405, 'text/plain', 'method not allowed\n');
    if (path === '/healthz') return reply(200, 'application/json', '{"status":"ok"}\n');
    if (path === '/readyz') {
      options.ready().then(
        () => reply(200, 'application/json', '{"status":"ready"}\n'),
        (error: Error) =>
          reply(
            503,
            'application/json',
            `${JSON.stringify({ status: 'unavailable', reason: error.message })}\n`,
          ),
      );
      return;
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, options.registry.contentType, text),
        (error: Error) => reply(500, 'text/plain', `${error.message}\n`),
      );
      return;
    }
    reply(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolveListen());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
