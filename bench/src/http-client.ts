/**
 * The load generators' HTTP client: node:http over keep-alive sockets, the cheapest client node
 * has. The load runs on the same 2 cores as the servers it measures, so every microsecond the
 * client spends is taken from them: with `fetch` (undici) as its client, the e2e scenario
 * accepted 0.6x the POSTs per second it accepts with this one (docs/benchmarks.md).
 */
import { Agent, request } from 'node:http';

export interface JsonPoster {
  /** POSTs a JSON body; resolves with the status and the answer's text. */
  post(path: string, body: string): Promise<{ status: number; text: string }>;
  /** Closes the sockets. */
  close(): void;
}

export function keepAlivePoster(port: number, sockets: number): JsonPoster {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  return {
    post: (path, body) =>
      new Promise((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path,
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              text += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
    close: () => agent.destroy(),
  };
}
