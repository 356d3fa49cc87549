import type { ConsumeOptions, Delivery, DeliveryHandler, Logger } from '@polyqueue/core';
import type { Redis } from 'ioredis';

/**
 * The loop every Redis consumer shares: fetch up to the free handler slots, run the handlers,
 * fetch again. A failed fetch (Redis down) is logged and retried with a capped backoff, so a
 * restart of the server never ends consumption. Resolves when signal has aborted and every
 * handler started has finished.
 */
export async function runConsumeLoop(options: {
  signal: AbortSignal;
  concurrency: number;
  fetch: (max: number) => Promise<Delivery[]>;
  handler: DeliveryHandler;
  logger: Logger;
  /**
   * When signal aborts during a fetch, whether to stop waiting for it: true while the blocking
   * connection is down (its command would wait for the server); otherwise the fetch returns
   * within REDIS_BLOCK_MS and its jobs are handled.
   */
  abandonFetch: () => boolean;
}): Promise<void> {
  const { signal, logger } = options;
  const concurrency = Math.max(1, options.concurrency);
  const inFlight = new Set<Promise<void>>();
  const aborted = abortPromise(signal);
  let failures = 0;
  while (!signal.aborted) {
    if (inFlight.size >= concurrency) {
      await Promise.race([aborted, ...inFlight]);
      continue;
    }
    let batch: Delivery[];
    try {
      const fetching = options.fetch(concurrency - inFlight.size);
      const stopped = aborted.then(() => (options.abandonFetch() ? null : fetching));
      const result = await Promise.race([fetching, stopped]);
      if (result === null) {
        fetching.catch(() => {});
        break;
      }
      batch = result;
      failures = 0;
    } catch (error) {
      failures += 1;
      if (failures === 1 || failures % 20 === 0)
        logger.warn({ err: error, failures }, 'fetching from redis failed; retrying');
      await sleep(Math.min(50 * 2 ** failures, 2_000), signal);
      continue;
    }
    for (const delivery of batch) {
      const running: Promise<void> = options
        .handler(delivery)
        .catch((error) => {
          // Unsettled: a lease (reliable, streams) brings it back; redis-list loses it.
          logger.error(
            { err: error, messageId: delivery.messageId },
            'delivery handler failed without settling',
          );
        })
        .finally(() => inFlight.delete(running));
      inFlight.add(running);
    }
  }
  await Promise.allSettled([...inFlight]);
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
export function watchConnection(redis: Redis, options: ConsumeOptions): () => void {
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

export function abortPromise(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Resolves after ms, or at once when signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The envelope id of a body, or fallback for a body that has none (foreign or malformed). */
export function messageIdOf(body: string, fallback: string): string {
  try {
    const id = (JSON.parse(body) as { id?: unknown } | null)?.id;
    return typeof id === 'string' && id.length > 0 ? id : fallback;
  } catch {
    return fallback;
  }
}
