/** Bounded waits for a broker's server to come up or go away. */
import { connect } from 'node:net';
import { sleep } from '../processes';

/**
 * Resolves once check() is true; polls every intervalMs and throws after timeoutMs. A check
 * that throws counts as "not yet": a server coming up refuses or drops connections.
 */
export async function until(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port (within a second). */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port (bounded). */
export function untilPortOpen(port: number, what: string, timeoutMs = 60_000): Promise<void> {
  return until(() => portOpen(port), `${what} (127.0.0.1:${port}) to accept connections`, timeoutMs);
}
