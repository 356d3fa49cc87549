import {
  type BackoffOptions,
  type ConsumeOptions,
  type Delivery,
  type DeliveryHandler,
  type Logger,
  runPullLoop,
  sleep,
} from '@polyqueue/core';
import type { RedisClient } from './connection';
import { ReadAhead } from './read-ahead';

/**
 * A failed fetch (Redis down) is retried after core's full-jitter backoff from 100 ms up to 2 s,
 * so a restart of the server never ends consumption and a restarted server is found at once.
 */
const FETCH_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 2_000 };

/**
 * The loop every Redis consumer shares: core's pull loop with the driver's fetch (BLPOP,
 * BLMOVE, XREADGROUP: they block in Redis, so no idle pause here). Connection changes are
 * reported by watchConnection from the blocking client's own events, not by the loop. Resolves
 * when signal has aborted and every handler started has finished (with read-ahead, also those
 * of the deliveries it still held).
 */
export async function runConsumeLoop(options: ConsumeLoopOptions): Promise<void> {
  const concurrency = Math.max(1, options.concurrency);
  const ahead =
    options.readNow && options.leaseMs !== undefined
      ? new ReadAhead({
          read: options.fetch,
          readNow: options.readNow,
          capacity: concurrency,
          leaseMs: options.leaseMs,
          logger: options.logger,
        })
      : undefined;
  await runPullLoop({
    signal: options.signal,
    concurrency,
    fetch: ahead ? (max) => ahead.fetch(max) : options.fetch,
    handler: options.handler,
    logger: options.logger,
    what: 'redis consumer',
    backoff: FETCH_BACKOFF,
    // A busy consumer reads again once a quarter of its slots are free, not at every finished
    // job: one XREADGROUP / LPOP / BLMOVE batch for several jobs instead of a round trip each.
    // An idle one (nothing running) reads at once, so latency at low load is unchanged.
    minFree: Math.ceil(concurrency / 4),
    abandonFetch: options.abandonFetch,
  });
  await ahead?.drain(options.handler, options.abandonFetch);
}

interface ConsumeLoopOptions {
  signal: AbortSignal;
  concurrency: number;
  fetch: (max: number) => Promise<Delivery[]>;
  /**
   * A leased driver's fetch without blocking (what is there now): with it and leaseMs, the
   * next batch of a backlog is read while the last one runs (read-ahead.ts).
   */
  readNow?: (max: number) => Promise<Delivery[]>;
  /** The lease of a read delivery, renewed while it waits to be handled. */
  leaseMs?: number;
  handler: DeliveryHandler;
  logger: Logger;
  /**
   * When signal aborts during a fetch, whether to stop waiting for it: true while the blocking
   * connection is down (its command would wait for the server); otherwise the fetch returns
   * within REDIS_BLOCK_MS and its jobs are handled.
   */
  abandonFetch: () => boolean;
}

/**
 * Runs task now and again after the delay it returns (ms), until signal aborts. Errors are
 * logged and the task runs again after fallbackMs. Resolves once the last run finished.
 */
export function repeat(
  task: () => Promise<number>,
  fallbackMs: number,
  signal: AbortSignal,
  logger: Logger,
  what: string,
): Promise<void> {
  return (async () => {
    while (!signal.aborted) {
      let next = fallbackMs;
      try {
        next = await task();
      } catch (error) {
        logger.warn({ err: error }, `${what} failed; trying again`);
      }
      await sleep(Math.max(5, next), signal);
    }
  })();
}

/** Reports connection loss and recovery of a consumer's blocking connection. */
export function watchConnection(redis: RedisClient, options: ConsumeOptions): () => void {
  const report = options.onConnectionChange;
  if (!report) return () => {};
  let up = redis.status === 'ready';
  let lastError: Error | undefined;
  const onError = (error: Error) => {
    lastError = error;
  };
  const onClose = () => {
    if (!up) return;
    up = false;
    report(false, lastError ?? new Error('redis connection closed'));
  };
  const onReady = () => {
    if (up) return;
    up = true;
    report(true);
  };
  redis.on('error', onError);
  redis.on('close', onClose);
  redis.on('ready', onReady);
  return () => {
    redis.off('error', onError);
    redis.off('close', onClose);
    redis.off('ready', onReady);
  };
}
