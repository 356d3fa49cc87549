import { type Logger, redact } from '@polyqueue/core';
import { Redis } from 'ioredis';
import { defineScripts } from './scripts';

/**
 * One ioredis connection. It reconnects forever after a drop or a server restart, backing off
 * up to 2 s between tries, so a worker never needs a manual step. A command connection gives a
 * command up after a few reconnect attempts (a publish fails instead of hanging); a blocking
 * connection (one per consumer, so a BLPOP never delays anyone else's commands) keeps its
 * command until the server is back, and its finite block timeout makes it return soon after.
 */
export function connect(
  url: string,
  logger: Logger,
  role: string,
  options: { blocking?: boolean } = {},
): Redis {
  const redis = new Redis(url, {
    connectionName: `polyqueue:${role}`,
    maxRetriesPerRequest: options.blocking ? null : 3,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
    // A READONLY replica after failover: reconnect to whatever the URL points at now.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  });
  let lastError = '';
  redis.on('error', (error: Error) => {
    // ioredis emits an error per failed reconnect; log each distinct one once.
    if (error.message !== lastError) logger.warn({ err: error, role }, 'redis connection error');
    lastError = error.message;
  });
  redis.on('ready', () => {
    if (lastError !== '') logger.info({ role }, 'redis connection restored');
    lastError = '';
  });
  defineScripts(redis);
  return redis;
}

/** Waits for the first connection; fails with a message naming the (redacted) URL. */
export async function connected(redis: Redis, url: string): Promise<void> {
  try {
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot reach Redis at ${redact(url)}: ${(error as Error).message}`);
  }
}

/** For /readyz: throws at once while the connection is down instead of queueing a PING. */
export async function ping(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
  await redis.ping();
}

/** Quits politely, or drops the socket when the server is not there to answer. */
export async function disconnect(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}
