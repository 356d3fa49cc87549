/** Ports for servers a test, the chaos run or a benchmark starts. Loads no test code. */
import { createServer } from 'node:net';

/** A free TCP port on 127.0.0.1 (bound and released; good enough for one run on one host). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
