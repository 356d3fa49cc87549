import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

const run = promisify(execFile);

/** The Redis the tests use; REDIS_URL overrides the local default. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export const SERVER_HINT = `Redis at ${REDIS_URL} (start: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log)`;

/** The command that starts the local CI Redis (no persistence, as the CI machine runs it). */
const START_ARGS = [
  '--daemonize',
  'yes',
  '--bind',
  '127.0.0.1',
  '-::1',
  '--port',
  '6379',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  '/var/lib/redis',
  '--logfile',
  '/var/log/redis/ci.log',
];

/** Only the local server can be stopped and started by a test. */
export const canRestart = /^redis:\/\/(127\.0\.0\.1|localhost)(:6379)?\/?$/.test(REDIS_URL);

export async function redisAnswers(): Promise<boolean> {
  try {
    const { stdout } = await run('redis-cli', ['-u', REDIS_URL, 'ping'], { timeout: 2_000 });
    return stdout.trim() === 'PONG';
  } catch {
    return false;
  }
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts the local server if it is not answering (after a test that stopped it). */
export async function ensureRedisRunning(): Promise<void> {
  if (await redisAnswers()) return;
  await run('redis-server', START_ARGS);
  await until(redisAnswers, 'redis-server to answer PING');
}

/** Stops the server without saving (its data is gone) and starts it again. */
export async function restartRedis(): Promise<void> {
  await run('redis-cli', ['-u', REDIS_URL, 'shutdown', 'nosave']).catch(() => {});
  await until(async () => !(await redisAnswers()), 'redis-server to stop');
  await ensureRedisRunning();
}

/** A plain client for writing the way a producer in another language would. */
export function rawClient(): Redis {
  return new Redis(REDIS_URL, {
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
  });
}
